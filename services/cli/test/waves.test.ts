import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommandLine } from '../src/command-line.ts';
import { UsageError } from '../src/errors.ts';
import { outcomeOf } from '../src/outcome.ts';
import { ProgressView, summaryLine } from '../src/progress-view.ts';
import { rolloutState } from '../src/rollout-follow.ts';
import { mergeStrategy, parseBake, parseMaxFailed, parseStrategyFlags, parseWaves } from '../src/strategy-flags.ts';
import { type DryRun, planLines, waveLines } from '../src/wave-view.ts';
import { progress } from './progress-fixture.ts';

/** Rollouts in waves in the CLI, without an API: the strategy flags, the rollout commands' parsing, the waves' rendering, exit 3. */

const wave = (percent: number, hosts: number, applied: number, failed: number, started: string | null, finished: string | null) => ({
  percent,
  hosts,
  applied,
  failed,
  started_at: started,
  finished_at: finished,
});
const THREE = [
  wave(25, 1, 1, 0, '2026-01-01T00:00:01.000Z', '2026-01-01T00:00:31.000Z'),
  wave(50, 1, 0, 0, '2026-01-01T00:00:32.000Z', null),
  wave(100, 2, 0, 0, null, null),
];

function usage(argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (err) {
    assert.instance(err, UsageError, argv.join(' '));
    return (err as Error).message;
  }
  throw new Error(`no usage error for ${argv.join(' ')}`);
}

test('--waves, --bake, --max-failed: their forms; anything else is a usage error', () => {
  assert.equal(parseWaves('5,25,100'), [5, 25, 100]);
  assert.equal(parseWaves('1.5%, 10%,100'), [1.5, 10, 100]);
  for (const bad of ['', '5,,100', 'a,100', '-5,100', '5;100'])
    assert.throws(
      () => parseWaves(bad),
      (e: unknown) => e instanceof UsageError,
      bad,
    );
  assert.is(parseBake('30s'), 30);
  assert.is(parseBake('2m'), 120);
  assert.is(parseBake('45'), 45);
  assert.is(parseBake('0'), 0);
  for (const bad of ['1.5s', '500ms', 'soon', '-1'])
    assert.throws(
      () => parseBake(bad),
      (e: unknown) => e instanceof UsageError,
      bad,
    );
  assert.equal(parseMaxFailed('10%'), { max_failed_percent: 10 });
  assert.equal(parseMaxFailed('2.5%'), { max_failed_percent: 2.5 });
  assert.equal(parseMaxFailed('3'), { max_failed_hosts: 3 });
  for (const bad of ['%', 'ten', '3 hosts', '1.5'])
    assert.throws(
      () => parseMaxFailed(bad),
      (e: unknown) => e instanceof UsageError,
      bad,
    );
});

test('the flags merge into the strategy the app has: what is not given stays; --no-waves clears it', () => {
  const current = { waves: [10, 100], bake_seconds: 60, max_failed_percent: 5, max_failed_hosts: null, on_failure: 'pause' as const };
  assert.equal(mergeStrategy(current, parseStrategyFlags({ bake: '30s' })), { ...current, bake_seconds: 30 });
  assert.equal(mergeStrategy(current, parseStrategyFlags({ waves: '5,25,100', 'max-failed': '3' })), {
    ...current,
    waves: [5, 25, 100],
    max_failed_hosts: 3,
  });
  assert.is(mergeStrategy(current, parseStrategyFlags({ 'no-waves': true })), null);
  assert.equal(mergeStrategy(current, parseStrategyFlags({})), current);
  assert.equal(mergeStrategy(null, parseStrategyFlags({ waves: '50,100' })), { waves: [50, 100] });
  assert.throws(() => mergeStrategy(null, parseStrategyFlags({ bake: '30s' })), /give --waves too/);
  assert.throws(() => parseStrategyFlags({ 'no-waves': true, waves: '5,100' }), /does not go with --waves/);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 5 }),
      fc.integer({ min: 0, max: 3600 }),
      fc.option(fc.integer({ min: 0, max: 100 })),
      (waves, bake, percent) => {
        const flags = { waves: waves.join(','), bake: String(bake), ...(percent === null ? {} : { 'max-failed': `${percent}%` }) };
        const merged = mergeStrategy(current, parseStrategyFlags(flags));
        // Every flag given lands in its field; every field no flag names is the app's.
        assert.equal(merged, { ...current, waves, bake_seconds: bake, ...(percent === null ? {} : { max_failed_percent: percent }) });
      },
    ),
  );
});

test('command lines: the rollout commands, promote --full, apps update with strategy flags and --dry-run', () => {
  for (const c of ['pause', 'resume', 'promote', 'abort', 'retry']) {
    const p = parseCommandLine(['rollouts', c, 'abc']);
    assert.ok(p !== 'help');
    assert.equal([p.command, p.args], [`rollouts ${c}`, { id: 'abc' }]);
  }
  const full = parseCommandLine(['rollouts', 'promote', 'abc', '--full']);
  assert.ok(full !== 'help' && full.values.full === true);
  assert.match(usage(['rollouts', 'pause', 'abc', '--full']), /does not take --full/);
  assert.match(usage(['rollouts', 'abort']), /needs <id>/);
  const up = parseCommandLine(['apps', 'update', 'web', '--waves', '5,25,100', '--bake', '30s', '--max-failed', '10%', '--dry-run']);
  assert.ok(up !== 'help' && up.values.waves === '5,25,100' && up.values['dry-run'] === true);
  assert.ok(parseCommandLine(['apps', 'update', 'web', '--no-waves']) !== 'help');
  assert.ok(parseCommandLine(['apps', 'create', 'web', '-f', 'x.json', '--dry-run']) !== 'help');
  assert.match(usage(['apps', 'update', 'web']), /needs -f <file>.*or --waves/);
  assert.match(usage(['apps', 'update', 'web', '--waves', '5,x']), /--waves must be/);
  assert.match(usage(['apps', 'update', 'web', '--bake', 'soon']), /--bake must be/);
  assert.match(usage(['apps', 'update', 'web', '--waves', '5,100', '--no-waves']), /--no-waves/);
  assert.match(usage(['apps', 'update', 'web', '--waves', '5,100', '--dry-run', '--wait']), /--dry-run changes nothing/);
  assert.match(usage(['apps', 'update', 'web', '--waves', '5,100', '--replace']), /--replace goes with -f/);
  assert.match(usage(['apps', 'create', 'web', '-f', 'x.json', '--waves', '5,100']), /does not take --waves/);
});

test('waves: one line each, the current one marked; times as clock times', () => {
  const lines = waveLines(progress({ wave: 2, waves: THREE }));
  assert.is(lines.length, 4);
  assert.match(lines[0] ?? '', /WAVE\s+PERCENT\s+HOSTS\s+APPLIED\s+FAILED\s+STARTED\s+FINISHED/);
  assert.match(lines[1] ?? '', /^ {3}1\s+25%\s+1\s+1\s+0\s+00:00:01\s+00:00:31$/);
  assert.match(lines[2] ?? '', /^>\s+2\s+50%\s+1\s+0\s+0\s+00:00:32\s+-$/);
  assert.match(lines[3] ?? '', /^ {3}3\s+100%\s+2\s+0\s+0\s+-\s+-$/);
});

test('live view of a rollout in waves: state and waves redrawn with the bar; plain output prints them when they change', () => {
  const chunks: string[] = [];
  const v = new ProgressView({ write: (t) => void chunks.push(t) }, 'tty');
  v.update(progress({ wave: 2, waves: THREE, reported: 1, applied: 1, pending: 3 }));
  v.update(progress({ wave: 2, state: 'paused', waves: THREE, reported: 1, applied: 1, pending: 3 }));
  const tty = chunks.join('');
  assert.ok(tty.includes('state: rolling, wave 2 of 3'), tty);
  assert.ok(tty.includes('state: paused, wave 2 of 3'), tty);
  assert.ok(tty.includes('\r\x1b[2K\x1b[1A\x1b[2K\x1b[1A\x1b[2K\x1b[1A\x1b[2K\x1b[1A\x1b[2K\x1b[1A\x1b[2K'), 'the bar and the five lines above it are cleared');
  assert.ok(tty.includes('  paused, wave 2/3'), tty);

  const plain: string[] = [];
  const pv = new ProgressView({ write: (t) => void plain.push(t) }, 'plain');
  const p = progress({ wave: 2, waves: THREE, reported: 1, applied: 1, pending: 3 });
  pv.update(p);
  pv.update({ ...p, pending: 2, offline: 1 });
  const text = plain.join('');
  assert.is(text.split('state: rolling, wave 2 of 3').length, 2, 'unchanged waves are not printed again');
  assert.is(text.split('progress: ').length, 3);
  const ended = progress({ wave: 1, waves: THREE, state: 'rolled_back', complete: true, abort_reason: '1 of 1 hosts failed', rollback_rollout_id: 'r2' });
  pv.finish(ended);
  assert.match(plain.join(''), /rollout r1 \(web revision 2, update\) rolled back, wave 1 of 3: 1 of 1 hosts failed; rollback rollout r2: /);
});

test('a single wave (no strategy) reads as before waves', () => {
  const one = progress({ waves: [wave(100, 4, 4, 0, null, null)], reported: 4, applied: 4, pending: 0, complete: true, succeeded: true, state: 'succeeded' });
  assert.match(summaryLine(one), / complete: 4\/4 hosts/);
  assert.is(rolloutState(one), 'complete');
  assert.is(rolloutState(progress({ waves: THREE, wave: 2, state: 'paused' })), 'paused (wave 2/3)');
});

test('--wait exits 3 for failed, aborted and rolled back; the reason names the rollback rollout', () => {
  const base = { waves: THREE, complete: true, expected: 4, reported: 4, applied: 4, pending: 0, succeeded: true };
  assert.is(outcomeOf(progress({ ...base, state: 'succeeded' })), null);
  for (const state of ['failed', 'aborted', 'rolled_back'] as const) {
    const reason = outcomeOf(progress({ ...base, state, abort_reason: 'aborted by admin' }));
    assert.ok(reason !== null, state);
    assert.match(reason ?? '', /aborted by admin/);
  }
  const rb = outcomeOf(progress({ ...base, state: 'rolled_back', succeeded: false, applied: 1, failed: 1, rollback_rollout_id: 'r9' }));
  assert.match(rb ?? '', /it was rolled back at wave 1 of 3; the rollback is rollout r9 \(nebula rollouts watch r9\)/);
  // All at once and failed: the hosts say why, as before waves.
  const failed = outcomeOf(progress({ state: 'failed', complete: true, expected: 1, reported: 1, failed: 1, pending: 0, hosts: [] }));
  assert.match(failed ?? '', /^0 of 1 hosts applied/);
});

test("a dry run's plan: the strategy in words, each wave's hosts (long lists cut)", () => {
  const hosts = Array.from({ length: 12 }, (_, i) => `h${i}`);
  const d = {
    dry_run: true,
    config: { rollout_strategy: { waves: [10, 100], bake_seconds: 30, max_failed_percent: 10, max_failed_hosts: null, on_failure: 'rollback' } },
    plan: {
      members: 13,
      waves: [
        { wave: 1, percent: 10, hosts: ['h12'] },
        { wave: 2, percent: 100, hosts },
      ],
    },
  } as unknown as DryRun;
  const lines = planLines('web', d);
  assert.match(
    lines[0] ?? '',
    /dry run of web: nothing was changed; the change would go out in waves 10, 100% \(bake 30s, at most 10% failed, on failure rollback\) to 13 hosts/,
  );
  assert.is(lines[1], '  wave 1 (10%): 1 host: h12');
  assert.is(lines[2], '  wave 2 (100%): 12 hosts: h0, h1, h2, h3, h4, h5, h6, h7, and 4 more');
  const none = planLines('web', { dry_run: true, config: { rollout_strategy: null }, plan: { members: 0, waves: [] } } as unknown as DryRun);
  assert.match(none.join('\n'), /all at once \(no rollout strategy\) to 0 hosts\nno host serves the app now/);
});

test.run();
