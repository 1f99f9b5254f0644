import { parseReportQuery } from '@nebula/contracts';
import type { RouteMethods } from './v2-types.ts';

/**
 * `GET /api/v2/reports`: the query string parsed (parseReportQuery, pure) and handed to
 * `reports.list`. A bad parameter is 400 `{"errors": {"<parameter>": [...]}}` (the original answered
 * 500 for a bad `last_id`).
 */
export function reportsRoute(): { methods: RouteMethods; name: string } {
  return {
    name: '',
    methods: {
      GET: async (caller, _name, _body, query) => {
        const q = parseReportQuery(query);
        if (!q.ok) return { status: 400, body: { errors: q.errors } };
        return { status: 200, body: await caller.reports.list(q.value) };
      },
    },
  };
}
