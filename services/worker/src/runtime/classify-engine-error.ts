import {
  ContainerConfigError,
  EngineFailureError,
  EngineUnavailableError,
  ImageNotFoundError,
  NameConflictError,
  PortConflictError,
  RegistryUnavailableError,
  type WorkerError,
} from '../errors.ts';

/**
 * Decides, from what the engine answered, whether an engine failure may pass (retry later) or is
 * about what we asked for (permanent). Pure: the status code and message text of the engine's
 * answer in, an error class out; `DockerRuntime` is its only caller.
 *
 *   socket-level error (ECONNREFUSED, ENOENT...) ───────────────────────▶ EngineUnavailableError
 *   text says the host is short of something that comes back             ▶ EngineFailureError
 *     (no space left on device, out of memory or file handles)
 *   pull:  registry unreachable / 5xx / 429 ───────────────────────────▶ RegistryUnavailableError
 *          unknown repository, tag or credentials (4xx) ────────────────▶ ImageNotFoundError
 *   container: port taken ──────────────────────────────────────────────▶ PortConflictError
 *              name taken (409) ────────────────────────────────────────▶ NameConflictError
 *              unknown image (404) ─────────────────────────────────────▶ ImageNotFoundError
 *              the config itself (bad mount, device, command, network)  ▶ ContainerConfigError
 *              passing engine trouble (timeouts, iptables, busy device)  ▶ EngineFailureError
 *              any other 4xx ───────────────────────────────────────────▶ ContainerConfigError
 *              any other 5xx, or no status ─────────────────────────────▶ EngineFailureError
 *
 * Order matters: a config-looking text that also says "no space left on device" is about the
 * disk, so a host short of disk, memory or file handles is checked first. A port taken stays permanent even when another
 * container holds it: the worker cannot free it without touching what is not its own.
 */
export type EngineErrorClass = new (message: string, options?: ErrorOptions) => WorkerError;

export interface EngineAnswer {
  /** The HTTP status of the engine's answer; undefined when there was none. */
  status?: number | undefined;
  /** The engine's `message` (or the error's text). */
  message: string;
  /** A Node socket error code (`ECONNREFUSED`...), when the call did not reach the engine. */
  code?: string | undefined;
}

export type EngineCallKind = 'container' | 'pull';

const ENGINE_DOWN = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EPIPE',
  'ECONNRESET',
  'ETIMEDOUT',
  'EACCES',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'ECONNABORTED',
  'ENETUNREACH',
]);

/** The host is short of something that comes back (disk, memory, file handles): never the config's fault. */
const SHORT_OF = /no space left on device|disk quota exceeded|too many open files|cannot allocate memory|resource temporarily unavailable/i;

/** Passing trouble inside the engine, whatever status it came with. */
const PASSING =
  /context deadline exceeded|i\/o timeout|timed? ?out|connection refused|connection reset|broken pipe|transport is closing|device or resource busy|iptables|no chain\/target\/match|could not find bridge|service unavailable|try again/i;

/** Texts that name something wrong in the container as asked for. */
const CONFIG =
  /invalid mount config|invalid volume specification|bind source path does not exist|mount denied|invalid mode|mounting .* not a directory|are you trying to mount|error gathering device information|no such device|executable file not found|no such file or directory.*(?:exec|entrypoint|cmd)|invalid reference format|network \S+ not found|not found: network|invalid port|invalid ip|invalid cpu|minimum memory limit|range of cpus|conflicting options|invalid restart policy|invalid (?:argument|parameter|config)/i;

const PORT_TAKEN = /port is already allocated|address already in use/i;
const NAME_TAKEN = /is already in use by container|name .* is already in use/i;

/** The registry did not answer, or answered with a failure of its own. */
const REGISTRY_DOWN =
  /no such host|dial tcp|connection refused|connection reset|timeout|timed out|awaiting headers|server misbehaving|tls handshake|\beof\b|unexpected http status: 5|status code 5\d\d|bad gateway|service unavailable|internal server error|toomanyrequests|too many requests/i;
const IMAGE_MISSING = /manifest unknown|not found|does not exist|pull access denied|unauthorized|authentication required|denied|invalid reference/i;

export function classifyEngineError(answer: EngineAnswer, kind: EngineCallKind = 'container'): EngineErrorClass {
  const { status, message, code } = answer;
  if (code !== undefined && ENGINE_DOWN.has(code)) return EngineUnavailableError;
  if (kind === 'pull') {
    if (/no space left on device|disk quota exceeded/i.test(message)) return EngineFailureError;
    if (REGISTRY_DOWN.test(message) && !/manifest unknown/i.test(message)) return RegistryUnavailableError;
    if (IMAGE_MISSING.test(message)) return ImageNotFoundError;
    if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) return ImageNotFoundError;
    return RegistryUnavailableError;
  }
  if (SHORT_OF.test(message)) return EngineFailureError;
  if (PORT_TAKEN.test(message)) return PortConflictError;
  if (NAME_TAKEN.test(message)) return NameConflictError;
  // Other 409s: "removal already in progress", "container is restarting"...: they pass.
  if (status === 409) return EngineFailureError;
  if (/no such image/i.test(message)) return ImageNotFoundError;
  if (CONFIG.test(message)) return ContainerConfigError;
  if (PASSING.test(message)) return EngineFailureError;
  if (status === 408 || status === 429) return EngineFailureError;
  if (status !== undefined && status >= 400 && status < 500) return ContainerConfigError;
  if (status === undefined) return EngineUnavailableError;
  return EngineFailureError;
}

/** The engine's own text of a dockerode error. */
export function engineMessage(err: unknown): string {
  const e = err as { json?: { message?: string } | null; message?: string } | null;
  return (e?.json?.message ?? e?.message ?? String(err)).trim();
}
