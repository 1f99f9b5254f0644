/** Markdown tables and CSV files for bench/RESULTS.md. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export type Cell = string | number;

export function mdTable(header: string[], rows: Cell[][]): string {
  const line = (cells: Cell[]) => `| ${cells.map((c) => String(c)).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export function csv(rows: Array<Record<string, Cell>>): string {
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const esc = (v: Cell | undefined) => {
    const s = v === undefined ? '' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v;
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return `${[cols.join(','), ...rows.map((r) => cols.map((c) => esc(r[c])).join(','))].join('\n')}\n`;
}

export function writeText(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

export const mb = (bytes: number) => bytes / (1024 * 1024);
export const fixed = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
export const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}x` : 'n/a');

/** What one part hands back to run.ts. */
export interface PartResult {
  /** Markdown for RESULTS.md (a section, without its top heading). */
  markdown: string;
  /** File name (inside bench/) to contents, CSV and SVG. */
  files: Record<string, string>;
  /** One line per target: met or not, with the number. */
  targets: Array<{ target: string; value: string; met: boolean }>;
}

/**
 * `md` with the section `## <heading>` (up to the next `## ` heading) replaced by `body`; a missing
 * one goes before the first heading containing `before`, else at the end. Other sections are kept
 * byte for byte: how one part's figures are brought up to date in bench/RESULTS.md.
 */
export function replaceSection(md: string, heading: string, body: string, before: string): string {
  const section = `## ${heading}\n\n${body.trimEnd()}\n\n`;
  const lines = md.split('\n');
  const starts: number[] = [];
  for (let i = 0, at = 0; i < lines.length; at += lines[i]!.length + 1, i++) if (lines[i]!.startsWith('## ')) starts.push(at);
  const headingAt = (i: number) => md.slice(i, md.indexOf('\n', i) === -1 ? md.length : md.indexOf('\n', i));
  const own = starts.findIndex((i) => headingAt(i) === `## ${heading}`);
  if (own !== -1) return md.slice(0, starts[own]) + section + md.slice(starts[own + 1] ?? md.length);
  const next = starts.find((i) => headingAt(i).includes(before));
  if (next !== undefined) return md.slice(0, next) + section + md.slice(next);
  return `${md.trimEnd()}\n\n${section}`.replace(/\n+$/, '\n');
}
