/**
 * What a change does to a device group's lists: pure, no I/O. The data layer calls it with the
 * group's current lists while it holds the group's row lock, and stores what it returns.
 *
 *   replace  POST create and POST update: both lists as given (missing ones empty)
 *   patch    PUT/PATCH update: the lists given replace theirs, the others stay; then the names
 *            to add (appended, once) and to remove (ours: `nebula device-groups update --add-app`)
 *
 * Names keep the order they were given in, without repeats (a repeat would be one app twice on
 * every host of the group).
 */
export interface GroupLists {
  apps: string[];
  cron_jobs: string[];
}

export type GroupListChange =
  | { kind: 'replace'; apps: readonly string[]; cron_jobs: readonly string[] }
  | {
      kind: 'patch';
      apps?: readonly string[] | undefined;
      cron_jobs?: readonly string[] | undefined;
      add_apps?: readonly string[] | undefined;
      remove_apps?: readonly string[] | undefined;
      add_cron_jobs?: readonly string[] | undefined;
      remove_cron_jobs?: readonly string[] | undefined;
    };

function unique(names: readonly string[]): string[] {
  return [...new Set(names)];
}

function edit(base: readonly string[], add: readonly string[] = [], remove: readonly string[] = []): string[] {
  const gone = new Set(remove);
  return unique([...base, ...add]).filter((n) => !gone.has(n));
}

export function planGroupLists(current: GroupLists, change: GroupListChange): GroupLists {
  if (change.kind === 'replace') return { apps: unique(change.apps), cron_jobs: unique(change.cron_jobs) };
  return {
    apps: edit(change.apps ?? current.apps, change.add_apps, change.remove_apps),
    cron_jobs: edit(change.cron_jobs ?? current.cron_jobs, change.add_cron_jobs, change.remove_cron_jobs),
  };
}
