import type { NebulaClient, RolloutSummary } from '@nebula/client';
import { table } from './format.ts';

/**
 * How a rollout in waves reads: its state and one line per wave (percent, hosts, applied, failed,
 * started, finished; the current one marked), and the plan a change's dry run answers. Pure: the
 * live view (progress-view.ts) and the commands print what these return.
 */
export type DryRun = Awaited<ReturnType<NebulaClient['apps']['dryRun']['patch']['mutate']>>;

/** A rollout in more than one wave; one of a single wave (every rollout without a strategy) reads as before waves. */
export function inWaves(r: Pick<RolloutSummary, 'waves'>): boolean {
  return r.waves.length > 1;
}

const STATE_WORDS: Record<RolloutSummary['state'], string> = {
  rolling: 'rolling',
  paused: 'paused',
  succeeded: 'succeeded',
  failed: 'failed',
  aborted: 'aborted',
  rolled_back: 'rolled back',
};

export function stateWords(state: RolloutSummary['state']): string {
  return STATE_WORDS[state];
}

/** "paused, wave 2 of 3", "rolled back, wave 1 of 3: 2 of 2 hosts failed ...; rollback rollout <id>". */
export function stateLine(r: RolloutSummary): string {
  const reason = r.abort_reason ? `: ${r.abort_reason}` : '';
  const rollback = r.rollback_rollout_id ? `; rollback rollout ${r.rollback_rollout_id}` : '';
  return `${stateWords(r.state)}, wave ${r.wave} of ${Math.max(r.waves.length, 1)}${reason}${rollback}`;
}

/** "12:00:01" of an ISO time (UTC), "-" for none: the live view shows when, not how long ago, so it changes only when the rollout does. */
function clock(iso: string | null): string {
  return iso === null ? '-' : iso.slice(11, 19);
}

/** One line per wave, under a header; `>` marks the current one. */
export function waveLines(r: RolloutSummary): string[] {
  const rows = r.waves.map((w, i) => [
    i + 1 === r.wave ? '>' : ' ',
    i + 1,
    `${w.percent}%`,
    w.hosts,
    w.applied,
    w.failed,
    clock(w.started_at),
    clock(w.finished_at),
  ]);
  return table([' ', 'WAVE', 'PERCENT', 'HOSTS', 'APPLIED', 'FAILED', 'STARTED', 'FINISHED'], rows).split('\n');
}

const SHOWN_HOSTS = 8;

/** What a dry run would do: the config's strategy in words, then each wave's hosts. */
export function planLines(app: string, d: DryRun): string[] {
  const s = d.config.rollout_strategy;
  const how = s
    ? `in waves ${s.waves.join(', ')}% (bake ${s.bake_seconds}s${s.max_failed_percent === null ? '' : `, at most ${s.max_failed_percent}% failed`}${s.max_failed_hosts === null ? '' : `, at most ${s.max_failed_hosts} hosts failed`}, on failure ${s.on_failure})`
    : 'all at once (no rollout strategy)';
  const lines = [`dry run of ${app}: nothing was changed; the change would go out ${how} to ${d.plan.members} host${d.plan.members === 1 ? '' : 's'}`];
  if (d.plan.waves.length === 0) lines.push('no host serves the app now: the change would reach hosts as they join');
  for (const w of d.plan.waves) {
    const shown = w.hosts.slice(0, SHOWN_HOSTS).join(', ');
    const more = w.hosts.length > SHOWN_HOSTS ? `, and ${w.hosts.length - SHOWN_HOSTS} more` : '';
    lines.push(`  wave ${w.wave} (${w.percent}%): ${w.hosts.length} host${w.hosts.length === 1 ? '' : 's'}: ${shown}${more}`);
  }
  return lines;
}
