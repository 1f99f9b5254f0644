import type { AppWithRollout } from '@nebula/client';
import { parseDuration } from './duration.ts';
import { UsageError } from './errors.ts';

/**
 * `apps update --waves 5,25,100 --bake 30s --max-failed 10%` (or `--max-failed 3`, a host count), and
 * `--no-waves`: a shortcut for the app's `rollout_strategy`. The flags merge into the strategy the
 * app has (or the file gives), so `--bake 1m` alone changes only the bake time. Pure: the form is
 * checked here (a usage error, nothing sent); what the numbers may be (increasing, ending at 100...)
 * the API checks, naming the field.
 */
export type RolloutStrategy = NonNullable<AppWithRollout['rollout_strategy']>;

export interface StrategyFlags {
  waves?: number[];
  bake_seconds?: number;
  max_failed_percent?: number;
  max_failed_hosts?: number;
}

export type StrategyChange = { kind: 'none' } | { kind: 'clear' } | { kind: 'set'; flags: StrategyFlags };

export interface StrategyValues {
  waves?: string | undefined;
  bake?: string | undefined;
  'max-failed'?: string | undefined;
  'no-waves'?: boolean | undefined;
}

const NUMBER = /^\d+(\.\d+)?$/;

export function parseWaves(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim().replace(/%$/, ''));
  if (parts.length === 0 || parts.some((p) => !NUMBER.test(p))) {
    throw new UsageError(`--waves must be cumulative percents separated by commas, like 5,25,100 (got "${text}")`);
  }
  return parts.map(Number);
}

/** Whole seconds; "0" for none. */
export function parseBake(text: string): number {
  if (text.trim() === '0') return 0;
  const ms = parseDuration(text);
  if (ms === null || ms % 1000 !== 0) throw new UsageError(`--bake must be whole seconds or a duration like 30s, 5m, 1h (0: none) (got "${text}")`);
  return ms / 1000;
}

/** "10%": a percent of the hosts tried; "3": a number of hosts. */
export function parseMaxFailed(text: string): Pick<StrategyFlags, 'max_failed_percent' | 'max_failed_hosts'> {
  const t = text.trim();
  if (t.endsWith('%') && NUMBER.test(t.slice(0, -1))) return { max_failed_percent: Number(t.slice(0, -1)) };
  if (/^\d+$/.test(t)) return { max_failed_hosts: Number(t) };
  throw new UsageError(`--max-failed must be a percent of the hosts tried (10%) or a number of hosts (3) (got "${text}")`);
}

export function parseStrategyFlags(values: StrategyValues): StrategyChange {
  const given = (['waves', 'bake', 'max-failed'] as const).filter((k) => values[k] !== undefined);
  if (values['no-waves']) {
    if (given.length > 0) throw new UsageError(`--no-waves clears the rollout strategy: it does not go with --${given.join(', --')}`);
    return { kind: 'clear' };
  }
  if (given.length === 0) return { kind: 'none' };
  const flags: StrategyFlags = {};
  if (values.waves !== undefined) flags.waves = parseWaves(values.waves);
  if (values.bake !== undefined) flags.bake_seconds = parseBake(values.bake);
  if (values['max-failed'] !== undefined) Object.assign(flags, parseMaxFailed(values['max-failed']));
  return { kind: 'set', flags };
}

/**
 * The strategy to send: the flags over `current` (the app's, or the file's). An app without one needs
 * --waves to get one: bake time or a budget without waves would be one wave of 100%, which is what it
 * has already.
 */
export function mergeStrategy(current: Partial<RolloutStrategy> | null | undefined, change: StrategyChange): Partial<RolloutStrategy> | null | undefined {
  if (change.kind === 'none') return current;
  if (change.kind === 'clear') return null;
  if (!current && change.flags.waves === undefined) {
    throw new UsageError('the app has no rollout strategy yet: give --waves too (e.g. --waves 5,25,100)');
  }
  return { ...(current ?? {}), ...change.flags };
}
