import type { RolloutProgress } from '@nebula/client';
import { positiveInt, ROLLOUT_COMMANDS, type RolloutCommand } from '../command-line.ts';
import { arg, type Command, type Ctx, print, printJson } from '../context.ts';
import { EXIT } from '../errors.ts';
import { ago, keyValues, ms, table } from '../format.ts';
import { doneOf, summaryLine } from '../progress-view.ts';
import { follow, rolloutState } from '../rollout-follow.ts';
import { inWaves, stateLine, waveLines } from '../wave-view.ts';

const DONE: Record<RolloutCommand, string> = {
  pause: 'paused',
  resume: 'resumed',
  promote: 'promoted',
  abort: 'aborted',
  retry: 'sent again to its failed hosts',
};

/** `nebula rollouts ...`: get, list, watch, and the commands of a rollout in waves. */
export const rolloutsCommands: Record<string, Command> = {
  async 'rollouts get'(ctx) {
    const hostsLimit = positiveInt(ctx.values.limit, '--limit', 1000);
    const p = await ctx.nebula.rollouts.get.query({ id: arg(ctx, 'id'), ...(hostsLimit ? { hosts_limit: hostsLimit } : {}) });
    if (ctx.json) {
      printJson(ctx, p);
      return EXIT.ok;
    }
    print(ctx, summaryLine(p));
    if (inWaves(p)) for (const l of waveLines(p)) print(ctx, l);
    print(
      ctx,
      keyValues([
        ['created', `${p.created_at} (${ago(p.created_at)})`],
        ['published', p.published_at],
        ['first result', p.first_result_at],
        ['last result', p.last_result_at],
      ]),
    );
    // Per region once there is one besides the hub (a fleet without regions sees what it always saw).
    const regions = Object.entries(p.regions);
    if (regions.some(([name]) => name !== 'hub')) {
      print(ctx, '');
      print(
        ctx,
        table(
          ['REGION', 'EXPECTED', 'APPLIED', 'FAILED', 'PENDING', 'OFFLINE', 'SUPERSEDED', 'JOINED'],
          regions.map(([name, c]) => [name, c.expected, c.applied, c.failed, c.pending, c.offline, c.superseded, c.joined]),
        ),
      );
    }
    if (p.failures.length > 0) {
      print(ctx, '\nfailures:');
      for (const f of p.failures) print(ctx, `  ${f.host}: ${f.error ?? 'failed'}`);
    }
    if (p.hosts.length > 0) {
      print(ctx, '');
      print(
        ctx,
        table(
          ['HOST', 'STATE', 'EXPECTED', 'ONLINE', 'APPLY', 'REPORTED', 'ERROR'],
          p.hosts.map((h) => [h.host, h.state, h.expected ? 'yes' : 'no', h.online ? 'yes' : 'no', ms(h.durations_ms?.apply), ago(h.reported_at), h.error]),
        ),
      );
      if (p.hosts_next) ctx.io.err.write(`more hosts: nebula rollouts get ${p.id} --json (hosts_after ${p.hosts_next})\n`);
    }
    return EXIT.ok;
  },

  async 'rollouts list'(ctx) {
    const limit = positiveInt(ctx.values.limit, '--limit', 100);
    const list = await ctx.nebula.rollouts.list.query({
      name: arg(ctx, 'app'),
      ...(limit ? { limit } : {}),
      ...(ctx.values.before ? { before: ctx.values.before } : {}),
    });
    if (ctx.json) {
      printJson(ctx, list);
      return EXIT.ok;
    }
    print(
      ctx,
      table(
        ['ID', 'REVISION', 'ACTION', 'CREATED', 'HOSTS', 'APPLIED', 'FAILED', 'PENDING', 'STATE'],
        list.rollouts.map((r) => [
          r.id,
          r.revision,
          r.action,
          ago(r.created_at),
          `${doneOf(r as RolloutProgress)}/${r.expected}`,
          r.applied,
          r.failed,
          r.pending,
          rolloutState(r),
        ]),
      ),
    );
    if (list.next) ctx.io.err.write(`older: nebula rollouts list ${ctx.args.app} --before ${list.next}\n`);
    return EXIT.ok;
  },

  async 'rollouts watch'(ctx) {
    return (await follow(ctx, arg(ctx, 'id'))).code;
  },

  // A command the rollout's state does not allow is the API's 409: exit 1 with its reason.
  ...Object.fromEntries(
    ROLLOUT_COMMANDS.map((c: RolloutCommand) => [
      `rollouts ${c}`,
      async (ctx: Ctx) => {
        const id = arg(ctx, 'id');
        const p =
          c === 'promote'
            ? await ctx.nebula.rollouts.promote.mutate({ id, ...(ctx.values.full ? { full: true } : {}) })
            : await ctx.nebula.rollouts[c].mutate({ id });
        if (ctx.json) {
          printJson(ctx, p);
          return EXIT.ok;
        }
        print(ctx, `rollout ${id} ${c === 'promote' && ctx.values.full ? 'promoted to its last wave' : DONE[c]}: now ${stateLine(p)}`);
        if (inWaves(p)) for (const l of waveLines(p)) print(ctx, l);
        ctx.io.err.write(`follow it: nebula rollouts watch ${id}\n`);
        return EXIT.ok;
      },
    ]),
  ),
};
