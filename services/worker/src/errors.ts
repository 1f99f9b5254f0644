import { refusalText, type Violation } from './planner/host-policy.ts';

/**
 * Named errors of the worker. Each says whether trying again later can help: the consumer maps
 * `retryable` to `nak(delay)` and everything else to `term()` plus a `failed` result.
 */
export abstract class WorkerError extends Error {
  abstract readonly retryable: boolean;
}

/** The Docker engine does not answer (socket missing, connection refused, timeout). */
export class EngineUnavailableError extends WorkerError {
  override name = 'EngineUnavailableError';
  readonly retryable = true;
}

/** An engine call got no answer within its deadline (a frozen or overloaded engine). */
export class EngineTimeoutError extends EngineUnavailableError {
  override name = 'EngineTimeoutError';
}

/**
 * The engine answered with a failure of its own that may pass: a 5xx that is not about the
 * container's config (no space left on device, iptables or containerd trouble, a device busy).
 */
export class EngineFailureError extends WorkerError {
  override name = 'EngineFailureError';
  readonly retryable = true;
}

/** The registry does not answer (connection refused, DNS failure, timeout, 5xx). */
export class RegistryUnavailableError extends WorkerError {
  override name = 'RegistryUnavailableError';
  readonly retryable = true;
}

/** A pull made no progress for the stall timeout: the registry sent part of a layer, then nothing. */
export class PullStalledError extends RegistryUnavailableError {
  override name = 'PullStalledError';
}

/** The registry answered that the image or tag does not exist, or refused our credentials. */
export class ImageNotFoundError extends WorkerError {
  override name = 'ImageNotFoundError';
  readonly retryable = false;
}

/** A host port the app needs is taken by something else. */
export class PortConflictError extends WorkerError {
  override name = 'PortConflictError';
  readonly retryable = false;
}

/** A container name the app needs is taken by a container that is not ours. */
export class NameConflictError extends WorkerError {
  override name = 'NameConflictError';
  readonly retryable = false;
}

/** The engine refused the container as specified (unknown network, bad device, bad volume...). */
export class ContainerConfigError extends WorkerError {
  override name = 'ContainerConfigError';
  readonly retryable = false;
}

/**
 * The revision asks for what this host's policy refuses (privileged, devices, the host network, a
 * bind mount outside the allowed roots, the Docker socket). Checked before any pull or container
 * change; the same config is refused again, so it is not retried (a later revision may pass).
 */
export class HostPolicyError extends WorkerError {
  override name = 'HostPolicyError';
  readonly retryable = false;
  readonly violations: readonly Violation[];
  constructor(violations: readonly Violation[]) {
    super(refusalText(violations));
    this.violations = violations;
  }
}

/** A new container did not come up (exited, unhealthy, or not running in time) during a roll. */
export class ContainerFailedError extends WorkerError {
  override name = 'ContainerFailedError';
  readonly retryable = false;
}

/** A convergence ran past its deadline; the message names the call or wait it was stuck in. */
export class ConvergeTimeoutError extends WorkerError {
  override name = 'ConvergeTimeoutError';
  readonly retryable = true;
}

/**
 * An operation stopped because the convergence it belonged to was aborted (its deadline passed, or
 * a newer revision replaced it). The cause is the abort reason; retryable when that reason is.
 */
export class OperationAbortedError extends WorkerError {
  override name = 'OperationAbortedError';
  readonly retryable: boolean;
  /** What was interrupted, e.g. "docker engine call `start web-1`". */
  readonly interrupted: string;
  constructor(message: string, options: { cause: unknown; interrupted: string }) {
    super(message, { cause: options.cause });
    this.retryable = isRetryable(options.cause);
    this.interrupted = options.interrupted;
  }
}

/** The error an aborted signal stands for, naming what was interrupted. */
export function abortedError(signal: AbortSignal, what: string): OperationAbortedError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : String(reason);
  return new OperationAbortedError(`${what} was interrupted: ${why}`, { cause: reason, interrupted: what });
}

/** The abort reason of a convergence replaced by a newer revision while it was stuck. */
export class SupersededError extends WorkerError {
  override name = 'SupersededError';
  readonly retryable = false;
}

/**
 * An app message written by a newer control plane than this worker understands (see MESSAGE_VERSION):
 * never applied, reported failed when enough of it can be read to say which revision it is, and
 * terminated. Not retryable: the same worker never understands it; the upgraded one reads the
 * stream again at start.
 */
export class NewerMessageVersionError extends WorkerError {
  override name = 'NewerMessageVersionError';
  readonly retryable = false;
  readonly version: number;
  constructor(version: number, understood: number, options?: { cause: unknown }) {
    super(`message schema version ${version} is newer than this worker understands (${understood}): upgrade the worker`, options);
    this.version = version;
  }
}

/** True when trying the same thing again later may succeed. Unknown errors are not retried. */
export function isRetryable(err: unknown): boolean {
  return err instanceof WorkerError && err.retryable;
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
