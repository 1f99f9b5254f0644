import { type AppAction, type AppConfig, type AppConfigInput, type AppConfigPatch, appConfigSchema, canonicalJson } from '@nebula/contracts';
import { InvalidConfigError, NotRunningError } from './errors.ts';

/**
 * What each action does to an app's config: pure, no I/O. The data layer calls `planChange` with the
 * current config while it holds the app's row lock, and stores what it returns as the next revision.
 */
export type ChangeRequest =
  | { kind: 'update'; config: AppConfigInput }
  | { kind: 'patch'; patch: AppConfigPatch }
  | { kind: 'stop' | 'start' | 'restart' | 'roll' | 'pull' }
  | { kind: 'rollback'; to: AppConfig };

export interface PlannedChange {
  action: AppAction;
  config: AppConfig;
}

export function validateConfig(input: unknown): AppConfig {
  const parsed = appConfigSchema.safeParse(input);
  if (!parsed.success) throw new InvalidConfigError(parsed.error.issues, { cause: parsed.error });
  return parsed.data;
}

export function planChange(app: string, current: AppConfig, req: ChangeRequest): PlannedChange {
  switch (req.kind) {
    case 'update':
      // POST update replaces the whole config; omitted fields take their defaults, and env_vars
      // defaults to [] there, as in the original (its SDK test pins it).
      return { action: 'update', config: validateConfig({ env_vars: [], ...req.config }) };
    case 'patch':
      // PUT/PATCH merge a partial config, then the result is checked as a whole (ports across fields...).
      return { action: 'update', config: validateConfig({ ...current, ...req.patch }) };
    case 'stop':
      return { action: 'stop', config: { ...current, running: false } };
    case 'start':
      return { action: 'start', config: { ...current, running: true } };
    case 'restart':
    case 'roll':
      if (!current.running) throw new NotRunningError(app);
      return { action: req.kind, config: current };
    case 'pull':
      return { action: 'pull', config: current };
    case 'rollback':
      return { action: 'rollback', config: validateConfig(req.to) };
  }
}

export interface FieldChange {
  field: string;
  from?: unknown;
  to?: unknown;
}

/** Top-level fields that differ between two configs (`from` absent for the first revision). */
export function diffConfigs(before: AppConfig | null, after: AppConfig): FieldChange[] {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after)]);
  const out: FieldChange[] = [];
  for (const field of [...keys].sort()) {
    const a = before === null ? undefined : (before as Record<string, unknown>)[field];
    const b = (after as Record<string, unknown>)[field];
    if (canonicalJson(a) === canonicalJson(b)) continue;
    const change: FieldChange = { field };
    if (a !== undefined) change.from = a;
    if (b !== undefined) change.to = b;
    out.push(change);
  }
  return out;
}
