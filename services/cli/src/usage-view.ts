import type { Host } from '@nebula/client';
import { ago, bytes, keyValues, percent, table } from './format.ts';

type Usage = NonNullable<Host['usage']>;

const share = (used: number, total: number) => `${bytes(used)} of ${bytes(total)} (${percent(total > 0 ? (used / total) * 100 : null)})`;

/** A usage sample for people: host figures, then one row per container. Pure. */
export function usageView(u: Usage, now = Date.now()): string {
  const host = keyValues([
    ['usage gathered', `${u.gathered_at} (${ago(u.gathered_at, now)})`],
    ['cpu', `${percent(u.cpu.used_percent)} of ${u.cpu.cores} cores (load ${u.cpu.load_1m})`],
    ['memory', share(u.memory.used_bytes, u.memory.total_bytes)],
    ['disk', u.disk === null ? '- (the engine data root is not readable by the worker)' : `${share(u.disk.used_bytes, u.disk.total_bytes)} at ${u.disk.path}`],
  ]);
  if (u.containers.length === 0) return host;
  const rows = u.containers.map((c) => [c.name, c.app ?? '-', percent(c.cpu_percent), bytes(c.memory_bytes), bytes(c.memory_limit_bytes)]);
  return `${host}\n\n${table(['CONTAINER', 'APP', 'CPU', 'MEMORY', 'LIMIT'], rows)}`;
}
