import type { Logger } from '@nebula/service-kit';
import { Counter, type Registry } from 'prom-client';
import type { ConvergeContext } from './converge.ts';
import { type AppMessageGate, createAppMessageGate, createGroupMessageGate, type GroupMessageGate, type RejectReason } from './message-gate.ts';

/**
 * What the worker refuses, counted: app and device group messages not applied (the gates that decide
 * it count them, per reason, once per stream sequence), and revisions refused by this host's policy.
 */
export interface WorkerMetrics {
  gate: AppMessageGate;
  groupGate: GroupMessageGate;
  onRefused: ConvergeContext['onRefused'];
  rejected(): Record<RejectReason, number>;
  rejectedGroupMessages(): Record<RejectReason, number>;
}

export function createWorkerMetrics(args: { registry: Registry; controlPlaneKey: string; log: Logger }): WorkerMetrics {
  const { registry, controlPlaneKey, log } = args;
  const refusals = new Counter({
    name: 'nebula_worker_policy_refusals_total',
    help: "Revisions refused by this host's policy (WORKER_ALLOW_*), per rule they break",
    labelNames: ['rule', 'app'],
    registers: [registry],
  });
  const onRefused: ConvergeContext['onRefused'] = (app, violations) => {
    for (const rule of new Set(violations.map((v) => v.rule))) refusals.inc({ rule, app });
  };

  const rejectedCounter = new Counter({
    name: 'nebula_worker_messages_rejected_total',
    help: 'App messages not applied: reason "signature" (not signed by the control plane key pinned at join), "newer_version" (of a newer schema version than this worker understands: upgrade the worker)',
    labelNames: ['reason'],
    registers: [registry],
  });
  const rejected: Record<RejectReason, number> = { signature: 0, newer_version: 0 };
  const gate = createAppMessageGate({
    controlPlaneKey,
    log,
    onRejected: (reason) => {
      rejected[reason] += 1;
      rejectedCounter.inc({ reason });
    },
  });

  const groupRejectedCounter = new Counter({
    name: 'nebula_worker_group_messages_rejected_total',
    help: 'Device group messages not applied: reason "signature" (not signed by the control plane key pinned at join), "newer_version" (of a newer schema version than this worker understands)',
    labelNames: ['reason'],
    registers: [registry],
  });
  const groupRejected: Record<RejectReason, number> = { signature: 0, newer_version: 0 };
  const groupGate = createGroupMessageGate({
    controlPlaneKey,
    log,
    onRejected: (reason) => {
      groupRejected[reason] += 1;
      groupRejectedCounter.inc({ reason });
    },
  });

  return {
    gate,
    groupGate,
    onRefused,
    rejected: () => ({ ...rejected }),
    rejectedGroupMessages: () => ({ ...groupRejected }),
  };
}
