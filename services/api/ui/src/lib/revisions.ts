/**
 * The config of every revision in an app's history, rebuilt from the current config and the
 * changes each revision made (pure). History answers, per revision, the fields it changed with
 * their `from` and `to`; walking back from the newest revision, undoing each one's changes gives
 * the revision before it. A field whose `from` is absent did not exist before that revision.
 */
export type Config = Readonly<Record<string, unknown>>;

export interface RevisionChanges {
  app_id: number;
  changes: ReadonlyArray<{ field: string; from?: unknown; to?: unknown }>;
}

/** Revisions newest first (as history lists them); `current` is the config of the first one. */
export function configsByRevision(current: Config, revisions: readonly RevisionChanges[]): Map<number, Config> {
  const out = new Map<number, Config>();
  let config: Record<string, unknown> = { ...current };
  for (const r of revisions) {
    out.set(r.app_id, config);
    const before: Record<string, unknown> = { ...config };
    for (const c of r.changes) {
      if (c.from === undefined) delete before[c.field];
      else before[c.field] = c.from;
    }
    config = before;
  }
  return out;
}

export interface FieldDiff {
  field: string;
  from: string | null;
  to: string | null;
}

function text(v: unknown): string | null {
  return v === undefined ? null : JSON.stringify(v, null, 2);
}

/** The fields that differ between two configs, by name; a field only in one has null on the other side. */
export function diffConfigs(a: Config, b: Config): FieldDiff[] {
  const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const out: FieldDiff[] = [];
  for (const field of fields) {
    const from = text(a[field]);
    const to = text(b[field]);
    if (from !== to) out.push({ field, from, to });
  }
  return out;
}
