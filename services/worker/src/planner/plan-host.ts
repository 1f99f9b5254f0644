import { type AppAction, type AppConfig, type AppMessage, type HostFacts, isNewer } from '@nebula/contracts';
import { WorkerError } from '../errors.ts';
import { type ContainerSpec, LABELS, type ObservedContainer, OWNER } from '../runtime/container-runtime.ts';
import { containerName, containerSpec, desiredCount } from './container-spec.ts';

/**
 * The pure planner: what should change on this host so that the containers of the given apps match
 * what is desired. No I/O; the executor applies the plan through a ContainerRuntime.
 *
 *   desired apps ─┐
 *   observed ─────┼─▶ planHost ─▶ per app: create / replace / remove / keep (each with a reason)
 *   host facts ───┘
 *
 * Safety rules (property-tested): only containers labelled as ours and as this host's are ever
 * planned on; an app never gets more containers than desired; applying a plan and planning again
 * yields nothing to do.
 */

/** all-at-once: update, restart, pull. one-at-a-time: roll (or any replace with rolling_restart). */
export type Strategy = 'all-at-once' | 'one-at-a-time';

export interface WantedApp {
  app: string;
  present: true;
  incarnation: number;
  revision: number;
  config: AppConfig;
  /** False for `stop` (and a config with `running: false`): no containers. */
  run: boolean;
  /** Replace containers made by an older revision even when they match (restart, roll). */
  recreateOlder: boolean;
  /** The image id the tag resolves to after a pull: containers on another image are replaced. */
  imageId: string | null;
  strategy: Strategy;
}

/** An app whose containers must all go (deleted, or no longer served by this host). */
export interface UnwantedApp {
  app: string;
  present: false;
  reason: string;
}

export type DesiredApp = WantedApp | UnwantedApp;

export interface HostContext extends HostFacts {
  hostId: string;
  /** Containers one app may have on this host (MAX_CONTAINERS_PER_APP); unset: no limit. */
  maxContainersPerApp?: number;
}

/** `containers_per` yields more containers on this host than MAX_CONTAINERS_PER_APP allows. */
export class TooManyContainersError extends WorkerError {
  override name = 'TooManyContainersError';
  readonly retryable = false;
}

export type Step =
  | { kind: 'create'; index: number; spec: ContainerSpec; reason: string }
  | { kind: 'replace'; index: number; current: ObservedContainer; spec: ContainerSpec; reason: string }
  | { kind: 'remove'; current: ObservedContainer; reason: string }
  | { kind: 'keep'; index: number; current: ObservedContainer; reason: string };

export interface AppPlan {
  app: string;
  strategy: Strategy;
  steps: Step[];
}

export interface HostPlan {
  apps: AppPlan[];
}

const NOT_RUNNING = new Set(['created', 'exited', 'dead']);

/** Ours: labelled as Nebula's and as this host's, with an app. Everything else is never touched. */
export function isOwned(c: ObservedContainer, hostId: string): boolean {
  return c.labels[LABELS.owner] === OWNER && c.labels[LABELS.host] === hostId && (c.labels[LABELS.app] ?? '') !== '';
}

function labelInt(c: ObservedContainer, key: string): number | null {
  const v = c.labels[key];
  if (v === undefined || !/^[0-9]{1,15}$/.test(v)) return null;
  return Number(v);
}

function planApp(want: DesiredApp, mine: ObservedContainer[], host: HostContext): AppPlan {
  if (!want.present) {
    return { app: want.app, strategy: 'all-at-once', steps: mine.map((current) => ({ kind: 'remove', current, reason: want.reason })) };
  }
  const count = want.run ? desiredCount(want.config, host) : 0;
  if (host.maxContainersPerApp !== undefined && count > host.maxContainersPerApp) {
    // Refused whole rather than cut: a silently smaller count would look like success.
    throw new TooManyContainersError(
      `containers_per ${JSON.stringify(want.config.containers_per)} yields ${count} containers of ${want.app} on this host (${host.cores} cores, ${host.memory_mb} MB); at most ${host.maxContainersPerApp} (MAX_CONTAINERS_PER_APP)`,
    );
  }
  const steps: Step[] = [];
  const byIndex = new Map<number, ObservedContainer>();
  const extra: Step[] = [];
  for (const c of mine) {
    const index = labelInt(c, LABELS.index);
    if (index === null || index < 1 || c.name !== containerName(want.app, index)) {
      extra.push({ kind: 'remove', current: c, reason: 'unrecognised container of the app' });
    } else if (index > count) {
      extra.push({ kind: 'remove', current: c, reason: count === 0 ? 'app stopped' : `beyond the desired count (${count})` });
    } else if (byIndex.has(index)) {
      extra.push({ kind: 'remove', current: c, reason: `second container with index ${index}` });
    } else {
      byIndex.set(index, c);
    }
  }
  const ctx = { hostId: host.hostId, app: want.app, incarnation: want.incarnation, revision: want.revision };
  for (let index = 1; index <= count; index++) {
    const spec = containerSpec(want.config, ctx, index);
    const current = byIndex.get(index);
    if (current === undefined) {
      steps.push({ kind: 'create', index, spec, reason: 'missing' });
      continue;
    }
    const reason = replaceReason(want, current, spec);
    steps.push(reason === null ? { kind: 'keep', index, current, reason: 'up to date' } : { kind: 'replace', index, current, spec, reason });
  }
  return { app: want.app, strategy: want.strategy, steps: [...steps, ...extra] };
}

function replaceReason(want: WantedApp, c: ObservedContainer, spec: ContainerSpec): string | null {
  if (c.labels[LABELS.configHash] !== spec.labels[LABELS.configHash]) return 'config changed';
  const incarnation = labelInt(c, LABELS.incarnation);
  const revision = labelInt(c, LABELS.revision);
  if (incarnation === null || revision === null) return 'revision labels missing';
  if (incarnation !== want.incarnation) return `from incarnation ${incarnation} of the app`;
  if (want.imageId !== null && c.imageId !== want.imageId) return 'image changed';
  if (want.recreateOlder && isNewer(want, { incarnation, revision })) return `made by revision ${revision}: restarted`;
  if (NOT_RUNNING.has(c.state)) return `not running (${c.state})`;
  return null;
}

/**
 * Plans every app listed in `desired` (one entry per app); containers of other apps, of other
 * hosts and not made by Nebula do not appear in the plan.
 */
export function planHost(desired: readonly DesiredApp[], observed: readonly ObservedContainer[], host: HostContext): HostPlan {
  const seen = new Set<string>();
  const apps: AppPlan[] = [];
  for (const want of desired) {
    if (seen.has(want.app)) continue;
    seen.add(want.app);
    const mine = observed.filter((c) => isOwned(c, host.hostId) && c.labels[LABELS.app] === want.app);
    apps.push(planApp(want, mine, host));
  }
  return { apps };
}

/** True when the plan changes nothing. */
export function isEmptyPlan(plan: HostPlan | AppPlan): boolean {
  const apps = 'apps' in plan ? plan.apps : [plan];
  return apps.every((a) => a.steps.every((s) => s.kind === 'keep'));
}

/** One line per change a plan makes, e.g. `created web-2: missing` (for logs and heartbeats). */
export function describeChanges(plan: AppPlan): string[] {
  const out: string[] = [];
  for (const s of plan.steps) {
    if (s.kind === 'create') out.push(`created ${s.spec.name}: ${s.reason}`);
    else if (s.kind === 'replace') out.push(`replaced ${s.current.name}: ${s.reason}`);
    else if (s.kind === 'remove') out.push(`removed ${s.current.name}: ${s.reason}`);
  }
  return out;
}

export interface Drift {
  /** What re-applying the revision would change; empty when the host matches it. */
  plan: AppPlan;
  repairs: string[];
}

/**
 * Drift of one app from the revision last applied on this host: that revision planned again in the
 * start-up (adopt) mode, which keeps every container that matches its config whatever made it and
 * asks for no pull. What is left is what changed behind the worker's back: a container removed or
 * stopped by hand, killed and not restarted, or one too many.
 */
export function planDrift(applied: AppMessage, observed: readonly ObservedContainer[], host: HostContext): Drift {
  const plan = planHost([desiredFromMessage(applied, { imageId: null, adopt: true })], observed, host).apps[0] ?? {
    app: applied.app,
    strategy: 'all-at-once',
    steps: [],
  };
  return { plan, repairs: describeChanges(plan) };
}

/** Apps with containers of ours on this host that are not in `served`. */
export function unservedApps(observed: readonly ObservedContainer[], served: readonly string[], hostId: string): string[] {
  const set = new Set(served);
  const out = new Set<string>();
  for (const c of observed) {
    const app = c.labels[LABELS.app];
    if (isOwned(c, hostId) && app !== undefined && !set.has(app)) out.add(app);
  }
  return [...out].sort();
}

/** Actions that pull the image first and replace containers on a new image. */
const PULLING: ReadonlySet<AppAction> = new Set(['create', 'update', 'restart', 'roll', 'pull', 'rollback']);

export function actionPulls(action: AppAction): boolean {
  return PULLING.has(action);
}

/**
 * What a message asks of this host. `adopt` is the start-up mode: containers that match the
 * config are kept whatever revision made them, and images are not re-pulled.
 */
export function desiredFromMessage(m: AppMessage, opts: { imageId: string | null; adopt?: boolean }): DesiredApp {
  if (m.action === 'delete') return { app: m.app, present: false, reason: 'app deleted' };
  const rolling = m.action === 'roll' || (m.config.rolling_restart && PULLING.has(m.action) && m.action !== 'create');
  return {
    app: m.app,
    present: true,
    incarnation: m.incarnation,
    revision: m.revision,
    config: m.config,
    run: m.action !== 'stop' && m.config.running,
    recreateOlder: opts.adopt !== true && (m.action === 'restart' || m.action === 'roll'),
    imageId: opts.adopt === true ? null : opts.imageId,
    strategy: rolling ? 'one-at-a-time' : 'all-at-once',
  };
}
