import { type AppDoc, type RolloutProgress, type RolloutSummary, watchRollout } from '@nebula/client';
import { type Ctx, print, printJson } from './context.ts';
import { formatDuration } from './duration.ts';
import { EXIT } from './errors.ts';
import { outcomeOf, stillPending } from './outcome.ts';
import { doneOf, ProgressView } from './progress-view.ts';
import { inWaves, stateWords } from './wave-view.ts';

/*
 * Following a rollout to its end (`rollouts watch`, `--wait`), and how a rollout reads in one cell.
 */

/** --timeout passed before the watched rollout was complete. */
export class WatchTimeoutError extends Error {
  override name = 'WatchTimeoutError';
  readonly retryable = true;
  constructor(ms: number) {
    super(`timed out after ${formatDuration(ms)}`);
  }
}

/**
 * Follows a rollout to the end. The exit code says whether every expected host applied it (3 when
 * not, with the reason on stderr), or that --timeout passed first (4, naming the hosts still pending).
 * `last` is the final progress (on a timeout, the latest known; null when none was read).
 */
export async function follow(ctx: Ctx, id: string): Promise<{ last: RolloutProgress | null; code: number }> {
  const ac = new AbortController();
  const timeoutMs = ctx.timeoutMs;
  const timer = timeoutMs === undefined ? null : setTimeout(() => ac.abort(new WatchTimeoutError(timeoutMs)), timeoutMs);
  let view: ProgressView | null = null;
  let latest: RolloutProgress | null = null;
  try {
    // A plain read first: a wrong id, refused credentials or an unreachable API fail here at once
    // (the event stream would keep reconnecting to an API that is down).
    await ctx.nebula.rollouts.get.query({ id, hosts_limit: 1 }, { signal: ac.signal });
    const v = new ProgressView(ctx.io.out, ctx.json ? 'json' : ctx.io.isTTY ? 'tty' : 'plain');
    view = v;
    ctx.setView(v);
    const last = await watchRollout(
      ctx.nebula,
      id,
      (p) => {
        latest = p;
        v.update(p);
      },
      ac.signal,
    );
    v.finish(last);
    // Complete is not succeeded: hosts that failed, went offline or were superseded, or none at all;
    // or the rollout was aborted or rolled back (in waves).
    const reason = outcomeOf(last);
    if (reason !== null) ctx.io.err.write(`rollout ${id} did not succeed: ${reason}\n`);
    return { last, code: reason === null ? EXIT.ok : EXIT.rolloutFailed };
  } catch (err) {
    const reason: unknown = ac.signal.reason;
    if (!(ac.signal.aborted && reason instanceof WatchTimeoutError)) throw err;
    (view as ProgressView | null)?.close();
    // One more read, of the pending hosts only (with a deadline of its own), to name them.
    const now = await ctx.nebula.rollouts.get.query({ id, host_state: 'pending', hosts_limit: 10 }, { signal: AbortSignal.timeout(5_000) }).catch(() => null);
    const known: RolloutProgress | null = now ?? latest;
    const pending = now?.hosts ?? (latest as RolloutProgress | null)?.hosts.filter((h) => h.state === 'pending') ?? null;
    ctx.io.err.write(`${reason.message}: rollout ${id} is not complete${known ? `: ${stillPending(known, pending)}` : ''}\n`);
    return { last: known, code: EXIT.timedOut };
  } finally {
    if (timer) clearTimeout(timer);
  }
}

export function rolloutState(r: RolloutSummary): string {
  if (inWaves(r) || r.state === 'paused' || r.state === 'aborted' || r.state === 'rolled_back')
    return `${stateWords(r.state)} (wave ${r.wave}/${Math.max(r.waves.length, 1)})`;
  if (!r.complete) return r.superseded_by ? 'superseded (in progress)' : 'in progress';
  if (r.failed > 0) return 'failed';
  if (r.superseded_by) return 'complete (superseded)';
  if (r.expected === 0) return 'no hosts';
  return r.succeeded ? 'complete' : 'not applied everywhere';
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
