import type { NatsConnection } from '@nats-io/transport-node';
import { type Database, type Kysely, pingDb } from '@nebula/db';
import { createMetricsRegistry } from '@nebula/service-kit';
import { Gauge, type Registry } from 'prom-client';
import type { OutboxRelay } from '../db/outbox-relay.ts';

export interface Ops {
  registry: Registry;
  health(): Promise<{ ok: boolean; checks: Record<string, boolean> }>;
}

/** `/health` and `/metrics`: the relay's gauges and a check of PostgreSQL and NATS. */
export function createOps(db: Kysely<Database>, nc: NatsConnection, relay: OutboxRelay): Ops {
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
  const health = async () => {
    const checks = { postgres: await pingDb(db), nats: !nc.isClosed() };
    return { ok: Object.values(checks).every(Boolean), checks };
  };
  return { registry, health };
}
