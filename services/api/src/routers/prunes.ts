import { pruneListQuerySchema, pruneListSchema } from '@nebula/contracts';
import { AccessDeniedError } from '../access/errors.ts';
import { allows, mayPrune } from '../access/permissions.ts';
import { listPrunes } from '../db/prunes.ts';
import { authedProcedure, router } from '../trpc.ts';

/**
 * What hosts freed with image prunes, as they reported it (stored by the notifier). Readable by
 * whoever may prune (pruning_allowed, admin), and otherwise per device group by "ro" on it: without
 * `device_group`, a caller sees the groups it may read; one that may read none is refused. REST
 * reaches it through the compat adapter (http/v2-prunes.ts), which parses the query string.
 */
export const prunesRouter = router({
  list: authedProcedure
    .input(pruneListQuerySchema.optional())
    .output(pruneListSchema)
    .query(({ ctx, input }) => {
      const q = pruneListQuerySchema.parse(input ?? {});
      const p = ctx.identity.permissions;
      let groups: string[] | null = null;
      if (!mayPrune(p)) {
        if (q.device_group !== undefined) {
          if (!allows(p, 'device_groups', q.device_group, 'ro'))
            throw new AccessDeniedError(`"${ctx.identity.name}" has no read access to device group "${q.device_group}" and may not prune`);
        } else {
          groups = Object.keys(p.device_groups).filter((g) => allows(p, 'device_groups', g, 'ro'));
          if (groups.length === 0) throw new AccessDeniedError(`"${ctx.identity.name}" may read no device group and may not prune`);
        }
      }
      return listPrunes(ctx.db, { ...q, groups });
    }),
});
