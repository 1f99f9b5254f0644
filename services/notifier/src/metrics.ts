import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Rejection } from './authenticate.ts';

export type StreamLabel = 'results' | 'heartbeats' | 'events';

/** Plain totals, per consumer, for tests and benchmarks (the same numbers as the Prometheus series). */
export interface ConsumerStats {
  /** Messages whose batch was committed and acked. */
  written: number;
  /** Rows inserted or changed (duplicates and stale messages change nothing). */
  rowsChanged: number;
  /** Messages dropped, never written: not from the host they name (see `Rejection`), invalid, or of a newer schema version. */
  rejected: number;
  /** The same, by reason. */
  rejectedBy: Partial<Record<Rejection, number>>;
  /** Host events only: the same by `<kind>:<reason>` (kind: group, cron, prune, or `?` when the subject has none). */
  rejectedByKind: Record<string, number>;
  /** Messages whose write failed, nak'ed for redelivery. */
  retried: number;
  batches: number;
}

export interface NotifierMetrics {
  stats: Record<StreamLabel, ConsumerStats>;
  batch(stream: StreamLabel, size: number, seconds: number, rowsChanged: number): void;
  /** `kind`: of a host event (the subject's third token), a label of its own. */
  rejected(stream: StreamLabel, reason: Rejection, kind?: string): void;
  retried(stream: StreamLabel, n: number): void;
}

const emptyStats = (): ConsumerStats => ({ written: 0, rowsChanged: 0, rejected: 0, rejectedBy: {}, rejectedByKind: {}, retried: 0, batches: 0 });

export function createNotifierMetrics(registry: Registry, hostCounts: () => Promise<{ online: number; offline: number }>): NotifierMetrics {
  const written = new Counter({
    name: 'notifier_messages_written_total',
    help: 'Messages written to PostgreSQL and acked',
    labelNames: ['stream'],
    registers: [registry],
  });
  const rows = new Counter({ name: 'notifier_rows_changed_total', help: 'Rows inserted or changed', labelNames: ['stream'], registers: [registry] });
  const rejected = new Counter({
    name: 'nebula_notifier_messages_rejected_total',
    help: 'Messages dropped and never written: unsigned, wrongly signed, of an unknown or revoked host, invalid, or of a newer schema version (newer_version); host events also by kind (group, cron, prune)',
    labelNames: ['stream', 'reason', 'kind'],
    registers: [registry],
  });
  const retried = new Counter({
    name: 'notifier_messages_retried_total',
    help: "Messages nak'ed after a failed write",
    labelNames: ['stream'],
    registers: [registry],
  });
  const size = new Histogram({
    name: 'notifier_batch_size',
    help: 'Messages per written batch',
    labelNames: ['stream'],
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
    registers: [registry],
  });
  const seconds = new Histogram({ name: 'notifier_batch_write_seconds', help: 'Time to write one batch', labelNames: ['stream'], registers: [registry] });
  new Gauge({
    name: 'notifier_hosts',
    help: 'Known hosts by status (from heartbeats)',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      try {
        const c = await hostCounts();
        this.set({ status: 'online' }, c.online);
        this.set({ status: 'offline' }, c.offline);
      } catch {
        // PostgreSQL unreachable: /health says so; keep the last values.
      }
    },
  });
  const stats = { results: emptyStats(), heartbeats: emptyStats(), events: emptyStats() };
  return {
    stats,
    batch(stream, n, secs, changed) {
      stats[stream].written += n;
      stats[stream].rowsChanged += changed;
      stats[stream].batches += 1;
      written.inc({ stream }, n);
      rows.inc({ stream }, changed);
      size.observe({ stream }, n);
      seconds.observe({ stream }, secs);
    },
    rejected(stream, reason, kind) {
      stats[stream].rejected += 1;
      stats[stream].rejectedBy[reason] = (stats[stream].rejectedBy[reason] ?? 0) + 1;
      if (kind === undefined) {
        rejected.inc({ stream, reason });
      } else {
        const k = `${kind}:${reason}`;
        stats[stream].rejectedByKind[k] = (stats[stream].rejectedByKind[k] ?? 0) + 1;
        rejected.inc({ stream, reason, kind });
      }
    },
    retried(stream, n) {
      stats[stream].retried += n;
      retried.inc({ stream }, n);
    },
  };
}
