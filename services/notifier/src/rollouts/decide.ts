import type { RolloutStrategy } from '@nebula/contracts';

/**
 * What the rollout controller does next with one active rollout in waves: a pure function of what
 * the database says (no I/O, no clock of its own), so that every rule is tested without PostgreSQL.
 *
 *   each counted host of waves 1..k (online when its wave started; waived hosts left out):
 *     result since its last retry ──▶ applied (failed if its containers of the revision exited or turned
 *                                     unhealthy since: bake) | failed | superseded
 *     none, past started + host_timeout_seconds ──▶ failed (timed out; reported at the deadline)
 *     none otherwise ──▶ pending
 *
 *   budget exceeded (any time) ──▶ fail: on_failure rollback | pause (a paused rollout waits as it is)
 *   paused ──▶ wait
 *   wave k done (no host pending, and bake_seconds since its last report) ──▶ succeed (k last)
 *                                                                      | pause for promotion (k = 1, auto_promote false)
 *                                                                      | start wave k + 1
 *   otherwise ──▶ wait
 *
 * The budget (">="; hosts, not attempts; only with at least one failure): failed >= max_failed_hosts,
 * or reported >= min_hosts_tried and failed * 100 >= max_failed_percent * reported. A strategy with
 * neither limit tolerates no failure: the first failed host exceeds it (waves without a budget are
 * there to stop a bad change early, not to push it on). Offline hosts at their wave's start are
 * not counted: they neither block a wave nor count in the budget.
 */

export type ResultStatus = 'applied' | 'failed' | 'superseded';

export interface CountedHost {
  host: string;
  /** The wave it belongs to (1-based). */
  wave: number;
  /** Its wave's start, or its last retry when later (ms). */
  since: number;
  /** Its newest result for the rollout, if any (results older than `since` are left out by the caller... or here). */
  result: { status: ResultStatus; at: number; error: string | null } | null;
  /** Its heartbeat shows a container of the revision that exited or is unhealthy (what), or null. */
  unhealthy: string | null;
}

export interface DecideInput {
  strategy: RolloutStrategy;
  state: 'rolling' | 'paused';
  pausedReason: 'manual' | 'promotion' | 'budget' | null;
  /** The current wave (1-based) and how many the plan has. */
  wave: number;
  waves: number;
  /** When the current wave started (ms). */
  waveStartedAt: number;
  /** Every counted host of waves 1..wave. */
  hosts: readonly CountedHost[];
  /** Hosts whose failures a resume accepted: outside the budget. */
  waived: readonly string[];
  now: number;
}

export type Outcome = { host: string; state: 'pending' } | { host: string; state: ResultStatus; at: number; error: string | null; news?: boolean };

export type Decision =
  | { kind: 'wait' }
  | { kind: 'advance'; to: number }
  | { kind: 'succeed' }
  | { kind: 'pause'; reason: 'promotion' | 'budget' }
  | { kind: 'fail'; onFailure: 'rollback' | 'pause'; reason: string };

export interface Judgement {
  decision: Decision;
  /** Failures seen by the controller itself (unhealthy during bake): to be recorded as the hosts' results. */
  found: Array<{ host: string; error: string }>;
  failed: number;
  reported: number;
}

const FIRST_ERRORS = 3;

/** Each counted host's outcome now. */
export function outcomes(input: Pick<DecideInput, 'strategy' | 'hosts' | 'waived' | 'now' | 'wave'>): Outcome[] {
  const waived = new Set(input.waived);
  const timeoutMs = input.strategy.host_timeout_seconds * 1000;
  const out: Outcome[] = [];
  for (const h of input.hosts) {
    if (waived.has(h.host)) continue;
    const r = h.result !== null && h.result.at >= h.since ? h.result : null;
    if (r === null) {
      const deadline = h.since + timeoutMs;
      if (input.now >= deadline)
        out.push({ host: h.host, state: 'failed', at: deadline, error: `no result within host_timeout_seconds (${input.strategy.host_timeout_seconds} s)` });
      else out.push({ host: h.host, state: 'pending' });
    } else if (r.status === 'applied' && h.unhealthy !== null && h.wave === input.wave) {
      out.push({ host: h.host, state: 'failed', at: input.now, error: `after applying: ${h.unhealthy}`, news: true });
    } else {
      out.push({ host: h.host, state: r.status, at: r.at, error: r.error });
    }
  }
  return out;
}

/** The budget, as the strategy documents it. */
export function budgetExceeded(s: RolloutStrategy, failed: number, reported: number): boolean {
  if (failed === 0) return false;
  if (s.max_failed_hosts === null && s.max_failed_percent === null) return true;
  if (s.max_failed_hosts !== null && failed >= s.max_failed_hosts) return true;
  return s.max_failed_percent !== null && reported >= s.min_hosts_tried && failed * 100 >= s.max_failed_percent * reported;
}

function budgetText(s: RolloutStrategy): string {
  const parts: string[] = [];
  if (s.max_failed_hosts !== null) parts.push(`max_failed_hosts ${s.max_failed_hosts}`);
  if (s.max_failed_percent !== null) parts.push(`max_failed_percent ${s.max_failed_percent}% once ${s.min_hosts_tried} reported`);
  return parts.length === 0 ? 'none set: no failure tolerated' : parts.join(', ');
}

/** "N of M hosts failed (budget ...): first errors: host-a: ..., host-b: ..." */
export function failureReason(s: RolloutStrategy, done: Outcome[]): string {
  const failed = done.filter((o): o is Extract<Outcome, { at: number }> => o.state === 'failed').sort((a, b) => a.at - b.at || (a.host < b.host ? -1 : 1));
  const reported = done.filter((o) => o.state !== 'pending').length;
  const first = failed
    .slice(0, FIRST_ERRORS)
    .map((f) => `${f.host}: ${(f.error ?? 'failed').slice(0, 200)}`)
    .join(', ');
  return `${failed.length} of ${reported} hosts failed (budget: ${budgetText(s)}): first errors: ${first}`;
}

export function decide(input: DecideInput): Judgement {
  const all = outcomes(input);
  const failed = all.filter((o) => o.state === 'failed').length;
  const reported = all.filter((o) => o.state !== 'pending').length;
  const found = all.flatMap((o) => (o.state === 'failed' && o.news === true ? [{ host: o.host, error: o.error ?? 'unhealthy' }] : []));
  const judged = (decision: Decision): Judgement => ({ decision, found, failed, reported });
  const s = input.strategy;

  if (budgetExceeded(s, failed, reported)) {
    const reason = failureReason(s, all);
    if (input.state === 'rolling') return judged({ kind: 'fail', onFailure: s.on_failure, reason });
    // Paused by the budget already, or paused with on_failure pause: it stays for a person to decide.
    if (input.pausedReason === 'budget' || s.on_failure === 'pause') return judged({ kind: 'wait' });
    return judged({ kind: 'fail', onFailure: s.on_failure, reason });
  }
  if (input.state === 'paused') return judged({ kind: 'wait' });

  if (all.some((o) => o.state === 'pending')) return judged({ kind: 'wait' });
  // Bake: since the last report of the wave (a failure found during it is a report too), healthy.
  const current = new Set(input.hosts.filter((h) => h.wave === input.wave).map((h) => h.host));
  let last = input.waveStartedAt;
  for (const o of all) if (o.state !== 'pending' && current.has(o.host)) last = Math.max(last, o.at);
  if (input.now < last + s.bake_seconds * 1000) return judged({ kind: 'wait' });

  if (input.wave >= input.waves) return judged({ kind: 'succeed' });
  if (input.wave === 1 && !s.auto_promote) return judged({ kind: 'pause', reason: 'promotion' });
  return judged({ kind: 'advance', to: input.wave + 1 });
}
