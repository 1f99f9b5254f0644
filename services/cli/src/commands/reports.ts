import { type Command, print, printJson } from '../context.ts';
import { EXIT } from '../errors.ts';
import { bytes, percent, table } from '../format.ts';
import { reportQueryOf } from '../report-flags.ts';

/** `nebula reports list`: host reports by id, the original's filters, one page at a time. */
export const reportsCommands: Record<string, Command> = {
  async 'reports list'(ctx) {
    const page = await ctx.nebula.reports.list.query(reportQueryOf(ctx.values));
    if (ctx.json) {
      printJson(ctx, page);
      return EXIT.ok;
    }
    const data = page.data ?? [];
    const rows = data.map((r) => [
      r._id.$oid,
      new Date(r.report_creation_time * 1000).toISOString().replace('.000Z', 'Z'),
      r.hostname,
      r.device_group,
      r.updated ? 'yes' : 'no',
      percent(r.host.cpu.used_percent),
      `${bytes(r.host.memory.used_bytes)}/${bytes(r.host.memory.total_bytes)}`,
      r.host.disk === null ? '-' : `${bytes(r.host.disk.used_bytes)}/${bytes(r.host.disk.total_bytes)}`,
      r.apps_containers.length,
    ]);
    print(ctx, data.length === 0 ? 'no reports' : table(['ID', 'CREATED', 'HOST', 'DEVICE GROUP', 'UPDATED', 'CPU', 'MEMORY', 'DISK', 'CONTAINERS'], rows));
    if (page.last_id !== null && data.length === (reportQueryOf(ctx.values).page_size ?? 10))
      ctx.io.err.write(`more: nebula reports list --after ${page.last_id.$oid} (with the same filters)\n`);
    return EXIT.ok;
  },
};
