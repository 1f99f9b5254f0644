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

/** The registry does not answer (connection refused, DNS failure, timeout, 5xx). */
export class RegistryUnavailableError extends WorkerError {
  override name = 'RegistryUnavailableError';
  readonly retryable = true;
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

/** A new container did not come up (exited, unhealthy, or not running in time) during a roll. */
export class ContainerFailedError extends WorkerError {
  override name = 'ContainerFailedError';
  readonly retryable = false;
}

/** True when trying the same thing again later may succeed. Unknown errors are not retried. */
export function isRetryable(err: unknown): boolean {
  return err instanceof WorkerError && err.retryable;
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
