import { reportPageSchema, reportQuerySchema } from '@nebula/contracts';
import { listReports } from '@nebula/db';
import { authedProcedure, router } from '../trpc.ts';

/**
 * Host reports (usage samples its workers sent, stored by the notifier), paged by id as the
 * original's `GET /api/v2/reports`. Any user may read them, as there. REST reaches it through the
 * compat adapter (http/v2-reports.ts), which parses the original's query string.
 */
export const reportsRouter = router({
  list: authedProcedure
    .input(reportQuerySchema.optional())
    .output(reportPageSchema)
    .query(({ ctx, input }) => listReports(ctx.db, reportQuerySchema.parse(input ?? {}))),
});
