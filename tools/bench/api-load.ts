import type { PartResult } from './report.ts';
export async function runApiLoad(_opts: { runs: number; log: (s: string) => void; [k: string]: unknown }): Promise<PartResult> {
  throw new Error('not yet');
}
