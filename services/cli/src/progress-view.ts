import type { RolloutProgress } from '@nebula/client';
import { ms } from './format.ts';
import { inWaves, stateLine, stateWords, waveLines } from './wave-view.ts';

/**
 * Shows a rollout's progress as it arrives:
 *   - on a terminal, one progress bar line rewritten in place (hosts done of expected), with each
 *     failure printed above it once, as it arrives;
 *   - otherwise (a pipe, a CI log), one plain line per change, failures on lines of their own;
 *   - with --json, one JSON document per change (NDJSON), the last one complete.
 * A rollout in waves also shows its state and one line per wave above the bar (redrawn with it on a
 * terminal; printed again only when they change otherwise).
 */
export interface Out {
  write(text: string): void;
}

/** Expected hosts with a result: what the bar counts. Hosts that joined later are shown apart. */
export function doneOf(p: RolloutProgress): number {
  return p.reported - p.joined;
}

export function bar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? width : Math.min(width, Math.round((done / total) * width));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

export function counts(p: RolloutProgress): string {
  const parts = [`applied ${p.applied}`, `failed ${p.failed}`, `pending ${p.pending}`];
  if (p.offline > 0) parts.push(`offline ${p.offline}`);
  if (p.superseded > 0) parts.push(`superseded ${p.superseded}`);
  if (p.joined > 0) parts.push(`joined ${p.joined}`);
  return parts.join(', ');
}

/** The closing line of a finished rollout. */
export function summaryLine(p: RolloutProgress): string {
  const state = inWaves(p)
    ? stateLine(p)
    : !p.complete
      ? 'in progress'
      : p.failed > 0
        ? 'complete with failures'
        : p.succeeded
          ? 'complete'
          : 'complete, not applied everywhere';
  const times = p.apply_ms.p50 === null ? '' : `; apply p50 ${ms(p.apply_ms.p50)}, p99 ${ms(p.apply_ms.p99)}`;
  const sup = p.superseded_by ? `; superseded by ${p.superseded_by}` : '';
  return `rollout ${p.id} (${p.app} revision ${p.revision}, ${p.action}) ${state}: ${doneOf(p)}/${p.expected} hosts (${counts(p)})${times}${sup}`;
}

export class ProgressView {
  private readonly failuresShown = new Set<string>();
  private lineOpen = false;
  /** Lines drawn above the open bar line (the waves), cleared with it on a terminal. */
  private linesAbove = 0;
  private lastWaves = '';
  private readonly out: Out;
  private readonly mode: 'tty' | 'plain' | 'json';

  constructor(out: Out, mode: 'tty' | 'plain' | 'json') {
    this.out = out;
    this.mode = mode;
  }

  update(p: RolloutProgress): void {
    if (this.mode === 'json') {
      this.out.write(`${JSON.stringify(p)}\n`);
      return;
    }
    const fresh = p.failures.filter((f) => !this.failuresShown.has(f.host));
    for (const f of fresh) this.failuresShown.add(f.host);
    const waves = inWaves(p) ? [`state: ${stateLine(p)}`, ...waveLines(p)] : [];
    const text = waves.join('\n');
    const state = inWaves(p) ? `  ${stateWords(p.state)}, wave ${p.wave}/${p.waves.length}` : '';
    if (this.mode === 'tty') {
      if (this.lineOpen) this.out.write(`\r\x1b[2K${'\x1b[1A\x1b[2K'.repeat(this.linesAbove)}`);
      for (const f of fresh) this.out.write(`✗ ${f.host}: ${f.error ?? 'failed'}\n`);
      for (const l of waves) this.out.write(`${l}\n`);
      this.out.write(`${bar(doneOf(p), p.expected)} ${doneOf(p)}/${p.expected} hosts  ${counts(p)}${state}`);
      this.lineOpen = true;
      this.linesAbove = waves.length;
      this.lastWaves = text;
    } else {
      for (const f of fresh) this.out.write(`failed: ${f.host}: ${f.error ?? 'failed'}\n`);
      if (text !== this.lastWaves && text !== '') this.out.write(`${text}\n`);
      this.lastWaves = text;
      this.out.write(`progress: ${doneOf(p)}/${p.expected} hosts (${counts(p)})${state}\n`);
    }
  }

  finish(p: RolloutProgress): void {
    if (this.mode === 'json') return;
    if (this.lineOpen) this.out.write('\n');
    this.lineOpen = false;
    this.linesAbove = 0;
    this.out.write(`${summaryLine(p)}\n`);
    // The waves as they ended, unless the last update showed them so already.
    const waves = [`state: ${stateLine(p)}`, ...waveLines(p)].join('\n');
    if (inWaves(p) && waves !== this.lastWaves) this.out.write(`${waves}\n`);
  }

  /** Ends an open bar line before something else is printed (an error). */
  close(): void {
    if (this.lineOpen) this.out.write('\n');
    this.lineOpen = false;
  }
}
