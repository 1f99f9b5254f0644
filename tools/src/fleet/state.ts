/**
 * The local fleet's state file (`.stack/fleet/state.json`): written when a fleet starts (before it
 * makes anything) and as it grows, removed when it stops. `npm run -s fleet -- status` reads it; the
 * next start reads a crashed run's to remove what it left.
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ProcRef } from '@nebula/local-fleet';

export interface FleetHostState {
  host_id: string;
  address: string;
  apps: string[];
  netns: string;
  docker_host: string;
  engine: ProcRef | null;
  worker: ProcRef | null;
  /** Set once the worker has exited. */
  worker_exit: string | null;
  log: string;
}

export interface FleetState {
  v: 1;
  /** The fleet's own process: while it runs, the fleet is its. */
  owner: ProcRef;
  phase: 'starting' | 'running' | 'stopping';
  started_at: string;
  api_url: string;
  /** The simulated hosts' run (@nebula/local-fleet), once made. */
  run: { id: string; dir: string } | null;
  hosts: FleetHostState[];
}

export const STATE_FILE = 'state.json';

export function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

const isRef = (x: unknown): x is ProcRef =>
  typeof x === 'object' && x !== null && Number.isInteger((x as ProcRef).pid) && typeof (x as ProcRef).start === 'string';
const isRefOrNull = (x: unknown) => x === null || isRef(x);

/** The state in `text`, or null when it is not one (half written, another version). */
export function parseState(text: string): FleetState | null {
  let s: FleetState;
  try {
    s = JSON.parse(text) as FleetState;
  } catch {
    return null;
  }
  if (typeof s !== 'object' || s === null || s.v !== 1 || !isRef(s.owner) || !Array.isArray(s.hosts)) return null;
  if (!['starting', 'running', 'stopping'].includes(s.phase)) return null;
  const hostOk = (h: FleetHostState) =>
    typeof h === 'object' &&
    h !== null &&
    typeof h.host_id === 'string' &&
    typeof h.address === 'string' &&
    Array.isArray(h.apps) &&
    h.apps.every((a) => typeof a === 'string') &&
    typeof h.docker_host === 'string' &&
    isRefOrNull(h.engine) &&
    isRefOrNull(h.worker);
  if (!s.hosts.every(hostOk)) return null;
  if (s.run !== null && (typeof s.run !== 'object' || typeof s.run.id !== 'string' || typeof s.run.dir !== 'string')) return null;
  return s;
}

export function readState(dir: string): FleetState | null {
  let text: string;
  try {
    text = readFileSync(statePath(dir), 'utf8');
  } catch {
    return null;
  }
  return parseState(text);
}

export function writeState(dir: string, state: FleetState): void {
  const file = statePath(dir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

export function removeState(dir: string): void {
  rmSync(statePath(dir), { force: true });
  rmSync(`${statePath(dir)}.tmp`, { force: true });
}
