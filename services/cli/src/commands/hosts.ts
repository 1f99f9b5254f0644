import type { Host } from '@nebula/client';
import { positiveInt } from '../command-line.ts';
import { arg, type Command, print, printJson } from '../context.ts';
import { EXIT } from '../errors.ts';
import { ago, keyValues, table } from '../format.ts';
import { usageView } from '../usage-view.ts';

/** `nebula hosts ...`: list, get, revoke (join tokens: join-tokens.ts). */
export const hostsCommands: Record<string, Command> = {
  async 'hosts list'(ctx) {
    const limit = positiveInt(ctx.values.limit, '--limit', 1000);
    const list = await ctx.nebula.hosts.list.query({
      ...(ctx.values.app?.[0] ? { app: ctx.values.app[0] } : {}),
      ...(ctx.values.status ? { status: ctx.values.status as 'online' | 'offline' } : {}),
      ...(limit ? { limit } : {}),
      ...(ctx.values.after ? { after: ctx.values.after } : {}),
    });
    if (ctx.json) {
      printJson(ctx, list);
      return EXIT.ok;
    }
    const running = (h: Host) =>
      h.running.map((r) => `${r.app}@${r.revision ?? '-'}(${r.containers.filter((c) => c.state === 'running').length}/${r.containers.length})`).join(' ');
    // Two workers under one host id: a column of its own, shown only when a host of the page has it.
    const dups = list.hosts.filter((h) => h.duplicate);
    const headers = [
      'ID',
      'STATUS',
      'APPS',
      'GROUP',
      'REGION',
      'RUNNING',
      'CORES',
      'MEMORY',
      'VERSION',
      'LAST SEEN',
      ...(dups.length > 0 ? ['DUPLICATE'] : []),
    ];
    const row = (h: Host) => [
      h.id,
      h.status,
      h.apps.join(','),
      h.device_group ?? '-',
      h.region ?? 'hub',
      running(h),
      h.cores,
      `${h.memory_mb}MB`,
      h.worker_version,
      ago(h.last_seen),
      ...(dups.length > 0 ? [h.duplicate ? `${h.instances} workers` : ''] : []),
    ];
    print(ctx, list.hosts.length === 0 ? 'no hosts' : table(headers, list.hosts.map(row)));
    if (dups.length > 0)
      ctx.io.err.write(
        `warning: ${dups.map((h) => h.id).join(', ')}: heartbeats from more than one worker under one host id; give each worker its own HOST_ID\n`,
      );
    if (list.next) ctx.io.err.write(`more: nebula hosts list --after ${list.next}\n`);
    return EXIT.ok;
  },

  async 'hosts get'(ctx) {
    const h = await ctx.nebula.hosts.get.query({ id: arg(ctx, 'host') });
    if (ctx.json) {
      printJson(ctx, h);
      return EXIT.ok;
    }
    print(
      ctx,
      keyValues([
        ['id', h.id],
        ['status', h.status],
        ['region', h.region ?? 'hub'],
        ...(h.duplicate ? [['duplicate', `yes: ${h.instances} workers send heartbeats as ${h.id}; give each its own HOST_ID`] as [string, unknown]] : []),
        ['device group', h.device_group ?? 'none'],
        ['apps', h.apps.join(', ')],
        ['cores', h.cores],
        ['memory', `${h.memory_mb}MB`],
        ['worker version', h.worker_version],
        ['heartbeat every', `${h.heartbeat_interval_seconds}s`],
        ['first seen', `${h.first_seen} (${ago(h.first_seen)})`],
        ['last seen', `${h.last_seen} (${ago(h.last_seen)})`],
        [h.status === 'online' ? 'offline after' : 'offline since', `${h.offline_after} (${ago(h.offline_after)})`],
      ]),
    );
    if (h.running.length > 0) {
      print(ctx, '');
      print(
        ctx,
        table(
          ['APP', 'INCARNATION', 'REVISION', 'CONTAINERS', 'REPAIRS', 'LAST REPAIR'],
          h.running.map((r) => [
            r.app,
            r.incarnation,
            r.revision,
            r.containers.map((c) => `${c.name}:${c.state}`).join(' '),
            r.repairs ?? 0,
            r.last_repair ? `${ago(r.last_repair.at)}: ${r.last_repair.what}` : '-',
          ]),
        ),
      );
    }
    print(ctx, '');
    print(ctx, h.usage ? usageView(h.usage) : 'usage: none reported yet (the worker reports every WORKER_REPORT_INTERVAL_SECONDS; 0: off)');
    return EXIT.ok;
  },

  async 'hosts revoke'(ctx) {
    const r = await ctx.nebula.hosts.revoke.mutate({ id: arg(ctx, 'host') });
    if (ctx.json) printJson(ctx, r);
    else print(ctx, `host ${r.host_id} revoked (at ${r.revoked_at}): its connection is closed and its credential refused; it must join again with a new token`);
    return EXIT.ok;
  },
};
