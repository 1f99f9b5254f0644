import { type AppDoc, type RolloutProgress, type RolloutSummary, watchRollout } from '@nebula/client';
import { type Ctx, print, printJson } from './context.ts';
import { EXIT } from './errors.ts';
import { doneOf, ProgressView } from './progress-view.ts';

/*
 * Following a rollout to its end (`rollouts watch`, `--wait`), and how a rollout reads in one cell.
 */

/** Follows a rollout to the end; the exit code says whether hosts failed. */
export async function follow(ctx: Ctx, id: string): Promise<{ last: RolloutProgress; code: number }> {
  // A plain read first: a wrong id, refused credentials or an unreachable API fail here at once
  // (the event stream would keep reconnecting to an API that is down).
  await ctx.nebula.rollouts.get.query({ id, hosts_limit: 1 });
  const view = new ProgressView(ctx.io.out, ctx.json ? 'json' : ctx.io.isTTY ? 'tty' : 'plain');
  ctx.setView(view);
  const last = await watchRollout(ctx.nebula, id, (p) => view.update(p));
  view.finish(last);
  return { last, code: last.failed > 0 ? EXIT.rolloutFailed : EXIT.ok };
}

export function rolloutState(r: RolloutSummary): string {
  if (!r.complete) return r.superseded_by ? 'superseded (in progress)' : 'in progress';
  if (r.failed > 0) return 'failed';
  return r.superseded_by ? 'complete (superseded)' : 'complete';
}

export function rolloutCell(r: RolloutSummary | null | undefined): string {
  if (!r) return '-';
  return `${doneOf(r as RolloutProgress)}/${r.expected} ${rolloutState(r)}`;
}

/** Prints an action's answer, and with --wait follows its rollout. */
export async function afterAction(ctx: Ctx, app: string, label: string, doc: Partial<AppDoc> & { rollout_id: string }): Promise<number> {
  if (!ctx.values.wait) {
    if (ctx.json) printJson(ctx, doc);
    else {
      print(ctx, `${app}: ${label}${doc.app_id !== undefined ? `, revision ${doc.app_id}` : ''}; rollout ${doc.rollout_id}`);
      ctx.io.err.write(`follow it: nebula rollouts watch ${doc.rollout_id}\n`);
    }
    return EXIT.ok;
  }
  if (!ctx.json) print(ctx, `${app}: ${label}${doc.app_id !== undefined ? `, revision ${doc.app_id}` : ''}; rollout ${doc.rollout_id}`);
  // --json --wait: the progress lines, then one document with the answer and the final progress.
  const { last, code } = await follow(ctx, doc.rollout_id);
  if (ctx.json) print(ctx, JSON.stringify({ ...doc, rollout: last }));
  return code;
}

