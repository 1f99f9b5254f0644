/**
 * Which outbox rows go out in one round of the relay, as a pure rule (the relay's query implements it
 * in PostgreSQL; `planRound` builds the round's chains from what the query returned, and the tests
 * hold the query to this rule).
 *
 *   pending rows ──▶ subjects not backing off ──▶ the `maxSubjects` whose oldest pending row is oldest
 *                                                 ──▶ per subject its `rowsPerSubject` oldest rows, in id order
 *
 * A chain is always a prefix of its subject's pending rows: a row goes out only after every older
 * pending row of its subject was published (or dead-lettered), which is the order hosts rely on.
 */

export interface PendingRow {
  /** The outbox id (a bigserial, as text): the order of the rows within a subject. */
  id: string;
  subject: string;
}

export interface RoundLimits {
  /** Subjects published concurrently in one round. */
  maxSubjects: number;
  /** Rows of one subject published in one round, one after the other. */
  rowsPerSubject: number;
}

/** Orders outbox ids (bigint text) numerically. */
export function compareIds(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The chains of one round from the pending rows (any order; published and dead-lettered rows left
 * out by the caller): one chain per subject, the chains ordered by their first row's age.
 */
export function planRound<R extends PendingRow>(pending: readonly R[], waiting: ReadonlySet<string>, limits: RoundLimits): R[][] {
  const bySubject = new Map<string, R[]>();
  for (const row of [...pending].sort((a, b) => compareIds(a.id, b.id))) {
    if (waiting.has(row.subject)) continue;
    const chain = bySubject.get(row.subject);
    if (chain) chain.push(row);
    else bySubject.set(row.subject, [row]);
  }
  // Map order is insertion order: the subjects by their oldest row.
  return [...bySubject.values()].slice(0, Math.max(0, limits.maxSubjects)).map((chain) => chain.slice(0, Math.max(0, limits.rowsPerSubject)));
}
