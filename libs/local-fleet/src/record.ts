/**
 * What a run has made, kept in its folder (`run.json`) as it makes it: whoever removes the run (its
 * owner at the end, or a later run after a crash) removes exactly that.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HostFamily } from './naming.ts';
import type { ProcRef } from './procs.ts';

export interface RunRecord {
  v: 1;
  family: HostFamily;
  id: string;
  /** The process that started the run: while it runs, nobody else removes the run. */
  owner: ProcRef;
  bridge: string;
  gateway: string;
  hosts: Array<{ name: string; netns: string; veth: string; address: string }>;
  /** The processes the run started (relays, engines). */
  procs: ProcRef[];
}

export const RECORD_FILE = 'run.json';

export function writeRecord(dir: string, record: RunRecord): void {
  const file = join(dir, RECORD_FILE);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

function isProcRef(x: unknown): x is ProcRef {
  const r = x as ProcRef;
  return typeof r === 'object' && r !== null && Number.isInteger(r.pid) && typeof r.start === 'string';
}

/** The record in `text`, or null when it is not one (a run killed while writing it, another version). */
export function parseRecord(text: string): RunRecord | null {
  let r: RunRecord;
  try {
    r = JSON.parse(text) as RunRecord;
  } catch {
    return null;
  }
  if (typeof r !== 'object' || r === null || r.v !== 1 || typeof r.id !== 'string' || !isProcRef(r.owner)) return null;
  if (typeof r.bridge !== 'string' || typeof r.gateway !== 'string' || !Array.isArray(r.hosts) || !Array.isArray(r.procs)) return null;
  if (!r.procs.every(isProcRef)) return null;
  if (!r.hosts.every((h) => typeof h === 'object' && h !== null && typeof h.netns === 'string' && typeof h.veth === 'string')) return null;
  return r;
}

export function readRecord(dir: string): RunRecord | null {
  try {
    return parseRecord(readFileSync(join(dir, RECORD_FILE), 'utf8'));
  } catch {
    return null;
  }
}
