import type { RolloutProgress } from '@nebula/client';

type RolloutHost = RolloutProgress['hosts'][number];

/**
 * Why a watched rollout did not end well, in one line for people: which expected hosts did not
 * apply it, and what they are instead. Pure: computed from the progress the watch ended with.
 */
const SHOWN = 10;

function hostList(hosts: RolloutHost[], more: boolean, withState = true): string {
  const shown = hosts.slice(0, SHOWN).map((h) => (withState ? `${h.host} ${h.state}` : h.host));
  const left = hosts.length - shown.length;
  return `${shown.join(', ')}${left > 0 ? `, and ${left} more` : ''}${more ? ', maybe more' : ''}`;
}

/** Null when every expected host applied it (`succeeded`); else e.g. "2 of 3 hosts applied: host-3 offline". */
export function shortfall(p: RolloutProgress): string | null {
  if (p.succeeded) return null;
  if (p.expected === 0) return 'no host applied it: none was expected (no online host served the app when the rollout was created)';
  const missing = p.hosts.filter((h) => h.expected && h.state !== 'applied');
  const sup = p.superseded_by ? `; superseded by rollout ${p.superseded_by}` : '';
  if (p.hosts_next === null) {
    const applied = p.hosts.filter((h) => h.expected && h.state === 'applied').length;
    return `${applied} of ${p.expected} hosts applied${missing.length > 0 ? `: ${hostList(missing, false)}` : ''}${sup}`;
  }
  // Only a page of hosts is at hand (a large fleet): name what it shows.
  return `not every one of ${p.expected} hosts applied${missing.length > 0 ? `: ${hostList(missing, true)}` : ''} (all hosts: nebula rollouts get ${p.id})${sup}`;
}

/** What a rollout still waits for, e.g. "1 of 3 hosts still pending: host-2"; `pending` is a page of the pending hosts. */
export function stillPending(p: RolloutProgress, pending: RolloutHost[] | null): string {
  const names = pending === null ? '' : pending.length > 0 ? `: ${hostList(pending, p.pending > pending.length && pending.length >= SHOWN, false)}` : '';
  return `${p.pending} of ${p.expected} hosts still pending${names}`;
}

/** The ends of a rollout that `--wait` reports as not succeeded (exit 3) whatever the hosts did. */
export const BAD_ENDS: ReadonlySet<RolloutProgress['state']> = new Set(['failed', 'aborted', 'rolled_back']);

/**
 * Why a watched rollout did not succeed, or null when it did: its end (aborted, rolled back, failed:
 * with the controller's reason and the rollback's rollout, which `--wait` does not follow: it names
 * it) and what its hosts did (`shortfall`).
 */
export function outcomeOf(p: RolloutProgress): string | null {
  const hosts = shortfall(p);
  if (!BAD_ENDS.has(p.state)) return hosts;
  // All at once, failed: the hosts say it all.
  if (p.state === 'failed' && p.abort_reason === null && p.rollback_rollout_id === null) return hosts ?? 'it failed';
  const words = p.state === 'rolled_back' ? 'rolled back' : p.state;
  const reason = p.abort_reason ? `: ${p.abort_reason}` : '';
  const rollback = p.rollback_rollout_id ? `; the rollback is rollout ${p.rollback_rollout_id} (nebula rollouts watch ${p.rollback_rollout_id})` : '';
  return `it was ${words} at wave ${p.wave} of ${Math.max(p.waves.length, 1)}${reason}${rollback}${hosts ? `; ${hosts}` : ''}`;
}
