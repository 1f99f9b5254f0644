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

/** Columns padded to their widest cell, two spaces apart; no trailing spaces. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function hostsTable(rows: HostRow[]): string {
  return renderTable(
    ['HOST ID', 'ADDRESS', 'APPS', 'ENGINE', 'WORKER'],
    rows.map((r) => [r.host_id, r.address, r.apps.length > 0 ? r.apps.join(',') : '-', r.engine, r.worker]),
  );
}

/** `fleet status --json`: one object per host. */
export function hostsJson(rows: HostRow[]): string {
  return JSON.stringify(rows.map((r) => ({ host_id: r.host_id, address: r.address, apps: r.apps, engine: r.engine, worker: r.worker })));
}
