import type { NatsConnection } from '@nats-io/transport-node';
import { type Database, type Kysely, pingDb } from '@nebula/db';
import { createMetricsRegistry } from '@nebula/service-kit';
import { Gauge, type Registry } from 'prom-client';
import { type OutboxRelay, oldestUnpublishedSeconds } from '../db/outbox-relay.ts';
import type { RetentionJob } from '../db/retention.ts';

export interface Ops {
  registry: Registry;
  health(): Promise<{ ok: boolean; checks: Record<string, boolean> }>;
}

/** `/health` and `/metrics`: the relay's gauges and a check of PostgreSQL and NATS. */
export function createOps(db: Kysely<Database>, nc: NatsConnection, relay: OutboxRelay, retention: RetentionJob | null): Ops {
  const registry = createMetricsRegistry('api');
  new Gauge({
    name: 'nebula_api_outbox_relay_active',
    help: '1 while this replica holds the outbox relay lock and publishes',
    registers: [registry],
    collect() {
      this.set(relay.state === 'active' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'nebula_api_outbox_published',
    help: 'Outbox rows this replica published since it started',
    registers: [registry],
    collect() {
      this.set(relay.published);
    },
  });
  new Gauge({
    name: 'nebula_api_outbox_dead_lettered',
    help: 'Outbox rows this replica dead-lettered (could never be published) since it started',
    registers: [registry],
    collect() {
      this.set(relay.deadLettered);
    },
  });
  new Gauge({
    name: 'nebula_outbox_oldest_unpublished_seconds',
    help: 'Age of the oldest outbox row still waiting to be published (dead letters left out); 0 when none waits',
    registers: [registry],
    async collect() {
      this.set(await oldestUnpublishedSeconds(db).catch(() => Number.NaN));
    },
  });
  new Gauge({
    name: 'nebula_api_retention_pruned',
    help: 'Expired rows this replica deleted since it started, per table',
    labelNames: ['table'],
    registers: [registry],
    collect() {
      for (const [table, n] of Object.entries(retention?.pruned ?? {})) this.set({ table }, n);
    },
  });
  const health = async () => {
    const checks = { postgres: await pingDb(db), nats: !nc.isClosed() };
    return { ok: Object.values(checks).every(Boolean), checks };
  };
  return { registry, health };
}
