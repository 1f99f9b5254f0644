import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ContainerConfigError,
  EngineFailureError,
  EngineUnavailableError,
  ImageNotFoundError,
  NameConflictError,
  PortConflictError,
  RegistryUnavailableError,
} from '../src/errors.ts';
import { classifyEngineError, type EngineCallKind } from '../src/runtime/classify-engine-error.ts';

/**
 * Retryable or permanent, over the texts Docker engines (20.10 to 27) answer with. Only the
 * container's own config is permanent; the host's trouble (disk, iptables, containerd, timeouts)
 * is retried.
 */
const cases: Array<[EngineCallKind, number | undefined, string, new (...a: never[]) => Error]> = [
  // Permanent: what we asked for is wrong, or a resource is held by what is not ours.
  [
    'container',
    500,
    'driver failed programming external connectivity on endpoint web-1 (3f2a9c): Bind for 0.0.0.0:25000 failed: port is already allocated',
    PortConflictError,
  ],
  [
    'container',
    500,
    'driver failed programming external connectivity on endpoint web-1 (3f2a9c): Error starting userland proxy: listen tcp4 0.0.0.0:25000: bind: address already in use',
    PortConflictError,
  ],
  [
    'container',
    409,
    'Conflict. The container name "/web-1" is already in use by container "9c1d0e". You have to remove (or rename) that container to be able to reuse that name.',
    NameConflictError,
  ],
  ['container', 404, 'No such image: nebula/missing:1', ImageNotFoundError],
  ['container', 400, 'invalid mount config for type "bind": bind source path does not exist: /srv/nope', ContainerConfigError],
  ['container', 400, "invalid volume specification: '/a:/b:/c:/d'", ContainerConfigError],
  ['container', 500, 'error gathering device information while adding custom device "/dev/nope": no such file or directory', ContainerConfigError],
  [
    'container',
    500,
    'failed to create shim: OCI runtime create failed: container_linux.go:380: starting container process caused: exec: "nope": executable file not found in $PATH: unknown',
    ContainerConfigError,
  ],
  [
    'container',
    400,
    'failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown',
    ContainerConfigError,
  ],
  [
    'container',
    500,
    'failed to create shim: OCI runtime create failed: container_linux.go:380: starting container process caused: process_linux.go:545: container init caused: rootfs_linux.go:76: mounting "/etc/app.conf" to rootfs at "/app.conf" caused: mount through procfd: not a directory: unknown: Are you trying to mount a directory onto a file (or vice-versa)? Check if the specified host path exists and is the expected type',
    ContainerConfigError,
  ],
  ['container', 404, 'network backend not found', ContainerConfigError],
  ['container', 400, 'invalid reference format: repository name must be lowercase', ContainerConfigError],
  ['container', 400, 'Minimum memory limit allowed is 6MB', ContainerConfigError],
  ['container', 400, 'Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available', ContainerConfigError],
  // Retryable: the host is short of something, or the engine has trouble of its own.
  ['container', 500, 'mkdir /var/lib/docker/overlay2/6b1f0a-init: no space left on device', EngineFailureError],
  [
    'container',
    500,
    'failed to create shim: OCI runtime create failed: container_linux.go:380: starting container process caused: process_linux.go:545: container init caused: rootfs_linux.go:76: mounting "proc" to rootfs at "/proc" caused: mkdir /var/lib/docker/overlay2/6b1f/merged/proc: no space left on device: unknown',
    EngineFailureError,
  ],
  ['container', 500, 'write /var/lib/docker/containers/9c1d/config.v2.json: disk quota exceeded', EngineFailureError],
  [
    'container',
    500,
    'driver failed programming external connectivity on endpoint web-1 (3f2a9c): (iptables failed: iptables --wait -t nat -A DOCKER -p tcp -d 0/0 --dport 25000 -j DNAT --to-destination 172.17.0.2:80 ! -i docker0: iptables: No chain/target/match by that name. (exit status 1))',
    EngineFailureError,
  ],
  ['container', 500, 'failed to create task for container: failed to create shim task: context deadline exceeded: unknown', EngineFailureError],
  [
    'container',
    500,
    'failed to create endpoint web-1 on network bridge: adding interface veth1a2b to bridge docker0 failed: could not find bridge docker0: route ip+net: no such network interface',
    EngineFailureError,
  ],
  ['container', 500, 'unlinkat /var/lib/docker/overlay2/6b1f/merged: device or resource busy', EngineFailureError],
  ['container', 500, 'Cannot restart container web-1: tried to kill container, but did not receive an exit event', EngineFailureError],
  ['container', 503, 'Service Unavailable', EngineFailureError],
  ['container', 409, 'removal of container web-1 is already in progress', EngineFailureError],
  ['container', undefined, 'socket hang up', EngineUnavailableError],
  // Pulls.
  ['pull', 404, 'manifest for 127.0.0.1:5000/nebula/missing:1 not found: manifest unknown: manifest unknown', ImageNotFoundError],
  [
    'pull',
    404,
    "pull access denied for nebula/missing, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
    ImageNotFoundError,
  ],
  ['pull', 500, 'unauthorized: authentication required', ImageNotFoundError],
  ['pull', 500, 'Get "https://127.0.0.1:5001/v2/": dial tcp 127.0.0.1:5001: connect: connection refused', RegistryUnavailableError],
  [
    'pull',
    500,
    'Get "http://127.0.0.1:5002/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)',
    RegistryUnavailableError,
  ],
  ['pull', 500, 'Get "https://registry.example.com/v2/": dial tcp: lookup registry.example.com on 127.0.0.53:53: no such host', RegistryUnavailableError],
  ['pull', 500, 'received unexpected HTTP status: 503 Service Unavailable', RegistryUnavailableError],
  [
    'pull',
    429,
    'toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit',
    RegistryUnavailableError,
  ],
  [
    'pull',
    500,
    'failed to register layer: Error processing tar file(exit status 1): write /usr/lib/libcrypto.so.3: no space left on device',
    EngineFailureError,
  ],
];

test('real engine answers: retryable or permanent, and which named error', () => {
  for (const [kind, status, message, expected] of cases) {
    const got = classifyEngineError({ status, message }, kind);
    assert.is(got.name, expected.name, `${kind} ${status ?? '-'} "${message}"`);
  }
});

test('"no space left on device" is retryable, whatever the status and whatever else the text says', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 400, max: 599 }),
      fc.string(),
      fc.string(),
      fc.constantFrom<EngineCallKind>('container', 'pull'),
      (status, before, after, kind) => {
        const Class = classifyEngineError({ status, message: `${before}no space left on device${after}` }, kind);
        return new Class('x').retryable;
      },
    ),
  );
});

test('a socket-level failure is an unavailable engine; an unknown 5xx is retried, an unknown 4xx is not', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'),
      fc.string(),
      (code, message) => classifyEngineError({ code, message }) === EngineUnavailableError,
    ),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 500, max: 599 }),
      fc.stringMatching(/^[a-z ]{0,30}$/),
      (status, message) => new (classifyEngineError({ status, message }))('x').retryable,
    ),
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 400, max: 499 }).filter((s) => s !== 408 && s !== 409 && s !== 429),
      fc.stringMatching(/^[a-z ]{0,30}$/).filter((m) => !/timed? ?out|refused|busy|again|iptables/.test(m)),
      (status, message) => !new (classifyEngineError({ status, message }))('x').retryable,
    ),
  );
});

test.run();
