import { formatTable } from '../text-table.ts';
/** What `npm start` and `fleet status` print of the local fleet, pure. */

export interface HostRow {
  host_id: string;
  address: string;
  apps: string[];
  /** The host's engine answers. */
  engine: 'up' | 'down';
  /** The host's worker process runs. */
  worker: 'running' | 'exited';
}

/** The fleet's tables are the release's: one formatter (../text-table.ts). */
export { formatTable as renderTable } from '../text-table.ts';

export function hostsTable(rows: HostRow[]): string {
  return formatTable(
    ['HOST ID', 'ADDRESS', 'APPS', 'ENGINE', 'WORKER'],
    rows.map((r) => [r.host_id, r.address, r.apps.length > 0 ? r.apps.join(',') : '-', r.engine, r.worker]),
  );
}

/** `fleet status --json`: one object per host. */
export function hostsJson(rows: HostRow[]): string {
  return JSON.stringify(rows.map((r) => ({ host_id: r.host_id, address: r.address, apps: r.apps, engine: r.engine, worker: r.worker })));
}
