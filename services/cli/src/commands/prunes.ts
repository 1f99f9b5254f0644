import { positiveInt } from '../command-line.ts';
import { type Command, print, printJson } from '../context.ts';
import { EXIT } from '../errors.ts';
import { ago, bytes, table } from '../format.ts';

/**
 * `nebula prunes list`: what each host freed with image prunes, newest prune first, and the total
 * of every matching report (the API sums them, so the total holds beyond the rows listed).
 */
export const prunesCommands: Record<string, Command> = {
  async 'prunes list'(ctx) {
    const group = ctx.values['device-group']?.[0];
    const pruneId = positiveInt(ctx.values['prune-id'], '--prune-id', 2_147_483_647);
    const limit = positiveInt(ctx.values.limit, '--limit', 10_000);
    const list = await ctx.nebula.prunes.list.query({
      ...(group === undefined ? {} : { device_group: group }),
      ...(pruneId === undefined ? {} : { prune_id: pruneId }),
      ...(ctx.values.host === undefined ? {} : { host: ctx.values.host }),
      ...(limit === undefined ? {} : { limit }),
    });
    if (ctx.json) {
      printJson(ctx, list);
      return EXIT.ok;
    }
    const rows = list.prunes.map((p) => [
      p.device_group,
      p.prune_id,
      p.host,
      bytes(p.bytes_freed),
      p.images_removed.length,
      `${p.reported_at} (${ago(p.reported_at)})`,
      p.error ?? '',
    ]);
    print(ctx, rows.length === 0 ? 'no prunes reported' : table(['DEVICE GROUP', 'PRUNE', 'HOST', 'FREED', 'IMAGES', 'REPORTED', 'ERROR'], rows));
    const hosts = new Set(list.prunes.map((p) => p.host)).size;
    print(
      ctx,
      `total freed: ${bytes(list.bytes_freed)} (${list.bytes_freed} bytes)${rows.length === 0 ? '' : `, ${rows.length} reports from ${hosts} hosts listed`}`,
    );
    return EXIT.ok;
  },
};
