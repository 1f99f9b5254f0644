import { type AppMessage, isLaterMessage, isNewer, targetOf, type WaveBase } from '@nebula/contracts';

/**
 * What one app message asks of this host, decided without I/O. A revision that goes out in waves
 * reaches every host as one message per wave: the hosts of the wave (`wave.hosts`, cumulative) apply
 * the revision and report it; every other host runs the wave's base meanwhile, quietly.
 *
 *   message ──targetOf(host)──▶ revision ──this host reported it already──▶ nothing (ack)
 *                 │                  └──────────────────────────────────▶ apply (reported)
 *                 └──────────────▶ base ──null (a new app)──────────────▶ nothing (ack)
 *                                    └──────────────────────────────────▶ base (adopt mode, no result)
 *
 * "Reported already" is this process's memory, not the labels: a worker that restarts mid-rollout
 * converges the later wave again and reports it once more (a no-op on its containers: a restart or
 * roll replaces only containers of older revisions), so that a host that died before reporting its
 * wave is never left unreported.
 */
export type Handling = { kind: 'apply'; target: AppMessage } | { kind: 'base'; target: AppMessage } | { kind: 'nothing'; why: string };

type Revision = { incarnation: number; revision: number };

const same = (a: Revision | null, b: Revision) => a !== null && a.incarnation === b.incarnation && a.revision === b.revision;

/**
 * The base of a wave as a message of its own: an `update` to the base's revision and config, which
 * the reconcile then keeps (drift repair) until a message moves the host on.
 */
export function baseMessage(m: AppMessage, base: WaveBase): AppMessage {
  return {
    v: m.v,
    app: m.app,
    incarnation: base.incarnation,
    revision: base.revision,
    action: 'update',
    config: base.config,
    rollout_id: base.rollout_id,
    created_at: m.created_at,
    ...(m.actor !== undefined ? { actor: m.actor } : {}),
  };
}

/** What `m` asks of `hostId`, given what it reported and runs (`state.reported`, `state.applied`). */
export function handlingOf(m: AppMessage, hostId: string, state: { reported: Revision | null; applied: Revision | null }): Handling {
  if (targetOf(m, hostId) === 'revision') {
    if (same(state.reported, m) && same(state.applied, m))
      return { kind: 'nothing', why: `revision ${m.incarnation}/${m.revision} already applied and reported on this host` };
    return { kind: 'apply', target: m };
  }
  const base = m.wave?.base ?? null;
  if (base === null) return { kind: 'nothing', why: 'outside the wave of a new app: nothing to run here yet' };
  return { kind: 'base', target: baseMessage(m, base) };
}

/**
 * How a message gives way to the newest one of the app in the stream (or to what this host already
 * applied): `superseded` by a newer revision (reported so, when it was this host's to apply), `later`
 * when the newest is the same revision at a later wave (acked quietly: the later one covers it), or
 * null when it is still the one to handle.
 */
export function supersession(m: AppMessage, newest: AppMessage | null, applied: Revision | null): 'superseded' | 'later' | null {
  if ((newest !== null && isNewer(newest, m)) || (applied !== null && isNewer(applied, m))) return 'superseded';
  if (newest !== null && isLaterMessage(newest, m)) return 'later';
  return null;
}
