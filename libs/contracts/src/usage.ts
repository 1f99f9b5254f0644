import { z } from 'zod';

/**
 * A host's usage as its worker gathered it (every WORKER_REPORT_INTERVAL_SECONDS, not at every
 * heartbeat: reading the engine's stats costs a second per container). The heartbeat carries the
 * latest sample; the notifier stores one report per sample (`gathered_at` tells samples apart).
 * Bytes are integers; a figure the worker could not read is null rather than a guess.
 */
const bytes = z.number().int().min(0);

export const containerUsageSchema = z.object({
  id: z.string().min(1).max(128),
  name: z.string().min(1).max(256),
  /** The app it belongs to (its `io.nebula.app` label). */
  app: z.string().max(256).nullable(),
  /** Percent of one core (Docker's convention: 200 is two cores busy); null when the engine gave none. */
  cpu_percent: z.number().min(0).nullable(),
  memory_bytes: bytes.nullable(),
  memory_limit_bytes: bytes.nullable(),
});
export type ContainerUsage = z.infer<typeof containerUsageSchema>;

export const hostUsageSchema = z.object({
  /** When the worker gathered it, by its clock (identifies the sample; the report's time is the server's). */
  gathered_at: z.iso.datetime(),
  cpu: z.object({
    cores: z.number().int().positive(),
    /** Percent of all cores busy since the previous sample (0..100); null on the first one. */
    used_percent: z.number().min(0).max(100).nullable(),
    /** The 1-minute load average (0 where the OS has none). */
    load_1m: z.number().min(0),
  }),
  memory: z.object({ used_bytes: bytes, total_bytes: bytes }),
  /** The file system of the engine's data root (`DockerRootDir`); null when it could not be read. */
  disk: z.object({ path: z.string().max(4096), used_bytes: bytes, total_bytes: bytes }).nullable(),
  /** Our containers that are running, by name. */
  containers: z.array(containerUsageSchema).max(10_000),
});
export type HostUsage = z.infer<typeof hostUsageSchema>;
