import { type AppConfig, appConfigSchema } from '@nebula/contracts';
import { loadEnv } from '@nebula/service-kit';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostPolicyFromEnv, workerEnvSchema } from '../src/config.ts';
import { DEFAULT_HOST_POLICY, type HostPolicy, policyViolations, refusalText, type Violation } from '../src/planner/host-policy.ts';

/**
 * The host policy over random configs and policies: the default refuses exactly what reaches the
 * host, widening never refuses more, a violation's setting allows it, and `..` never leads out of a
 * bind root nor around the Docker socket rule.
 */

/** Path segments, `..` and `.` included, and the names on the way to the engine's sockets. */
const segment = fc.constantFrom('srv', 'data', 'var', 'run', 'docker.sock', 'containerd', 'containerd.sock', 'etc', 'x', '..', '.', '');
const absPath = fc.array(segment, { maxLength: 6 }).map((s) => `/${s.join('/')}`);
const relSegments = fc.array(segment, { minLength: 1, maxLength: 6 });
const DEVICES = ['/dev/ttyUSB0', '/dev/sda', '/dev/dri/renderD128'];
const device = fc.oneof(
  fc.constantFrom(...DEVICES),
  fc.constantFrom(...DEVICES).map((d) => `${d}:/dev/in-container:rw`),
  fc.constant('/dev/../dev/sda'),
);
const namedVolume = fc.constantFrom('pgdata', 'cache', 'v1.data');
const volume = fc.oneof(
  fc.tuple(absPath, fc.constantFrom('', ':ro')).map(([src, o]) => `${src}:/mnt/v${o}`),
  namedVolume.map((n) => `${n}:/var/lib/data`),
);
const NETWORKS = [['nebula', 'bridge'], ['bridge'], ['host'], ['none'], ['nebula']];

const configArb = fc
  .record({
    privileged: fc.boolean(),
    devices: fc.array(device, { maxLength: 3 }),
    networks: fc.constantFrom(...NETWORKS),
    volumes: fc.array(volume, { maxLength: 4 }),
  })
  .map((c): AppConfig => appConfigSchema.parse({ docker_image: 'img:1', ...c }));

/** A config that asks for nothing of the host: named volumes, bridge networks. */
const harmlessArb = fc
  .record({
    networks: fc.constantFrom(['nebula', 'bridge'], ['bridge'], ['none']),
    volumes: fc.array(
      namedVolume.map((n) => `${n}:/data`),
      { maxLength: 3 },
    ),
  })
  .map((c): AppConfig => appConfigSchema.parse({ docker_image: 'img:1', privileged: false, devices: [], ...c }));

const policyArb: fc.Arbitrary<HostPolicy> = fc.record({
  allowPrivileged: fc.boolean(),
  allowDevices: fc.oneof(fc.boolean(), fc.subarray(DEVICES)),
  allowHostNetwork: fc.boolean(),
  allowedBindRoots: fc.array(absPath, { maxLength: 3 }),
  allowDockerSocket: fc.boolean(),
  dockerSockets: fc.constant([...DEFAULT_HOST_POLICY.dockerSockets]),
});

/** A policy that allows at least what `p` does. */
function widen(p: HostPolicy): fc.Arbitrary<HostPolicy> {
  return fc
    .record({
      privileged: fc.boolean(),
      devices: fc.oneof(fc.constant(true), fc.subarray(DEVICES)),
      hostNetwork: fc.boolean(),
      roots: fc.array(absPath, { maxLength: 2 }),
      socket: fc.boolean(),
    })
    .map((w) => ({
      allowPrivileged: p.allowPrivileged || w.privileged,
      allowDevices: p.allowDevices === true || w.devices === true ? true : [...(p.allowDevices === false ? [] : p.allowDevices), ...(w.devices as string[])],
      allowHostNetwork: p.allowHostNetwork || w.hostNetwork,
      allowedBindRoots: [...p.allowedBindRoots, ...w.roots],
      allowDockerSocket: p.allowDockerSocket || w.socket,
      dockerSockets: p.dockerSockets,
    }));
}

const key = (v: Violation) => `${v.rule} ${v.field} ${v.detail}`;
const isBind = (v: string) => v.startsWith('/');

/** An oracle of its own for `..`: the segments of a path resolved with a stack. */
function resolve(path: string): string[] {
  const out: string[] = [];
  for (const s of path.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s);
  }
  return out;
}
const underSegments = (p: string[], root: string[]) => root.length <= p.length && root.every((s, i) => p[i] === s);
/** Every path that is a socket or holds one, written out. */
const SOCKET_REACHING = new Set([
  '/',
  '/var',
  '/run',
  '/var/run',
  '/run/containerd',
  '/var/run/containerd',
  '/run/docker.sock',
  '/var/run/docker.sock',
  '/run/containerd/containerd.sock',
  '/var/run/containerd/containerd.sock',
]);
const resolvedPath = (p: string) => `/${resolve(p).join('/')}`;

/** The policy as the environment that gives it, and back through the worker's own parsing. */
function policyEnv(p: HostPolicy): Record<string, string> {
  return {
    WORKER_ALLOW_PRIVILEGED: String(p.allowPrivileged),
    WORKER_ALLOW_DEVICES: typeof p.allowDevices === 'boolean' ? String(p.allowDevices) : p.allowDevices.join(','),
    WORKER_ALLOW_HOST_NETWORK: String(p.allowHostNetwork),
    WORKER_ALLOWED_BIND_ROOTS: p.allowedBindRoots.join(','),
    WORKER_ALLOW_DOCKER_SOCKET: String(p.allowDockerSocket),
  };
}
const parsePolicy = (env: Record<string, string>) => hostPolicyFromEnv(loadEnv(workerEnvSchema, env));

test('the default policy refuses exactly what reaches the host: privileged, devices, the host network, any bind', () => {
  fc.assert(
    fc.property(configArb, (c) => {
      const rules = new Set(policyViolations(c, DEFAULT_HOST_POLICY).map((v) => v.rule));
      assert.is(rules.has('privileged'), c.privileged);
      assert.is(rules.has('devices'), c.devices.length > 0);
      assert.is(rules.has('host_network'), c.networks.includes('host'));
      assert.is(rules.has('bind_mount') || rules.has('docker_socket'), c.volumes.some(isBind));
      assert.not.ok(rules.has('pid_host'));
    }),
    { numRuns: 500 },
  );
});

test('a config that asks nothing of the host passes any policy', () => {
  fc.assert(
    fc.property(harmlessArb, policyArb, (c, p) => {
      assert.equal(policyViolations(c, p), []);
    }),
    { numRuns: 300 },
  );
});

test('widening a policy never adds a violation', () => {
  fc.assert(
    fc.property(
      configArb,
      policyArb.chain((p) => fc.tuple(fc.constant(p), widen(p))),
      (c, [narrow, wide]) => {
        const before = new Set(policyViolations(c, narrow).map(key));
        for (const v of policyViolations(c, wide)) assert.ok(before.has(key(v)), `${key(v)} appeared when widening`);
      },
    ),
    { numRuns: 500 },
  );
});

test("each violation's setting, applied to the host's environment, allows it; all of them together allow the config", () => {
  fc.assert(
    fc.property(configArb, policyArb, (c, p) => {
      const violations = policyViolations(c, p);
      const merged = policyEnv(p);
      for (const v of violations) {
        const [name = '', value = ''] = v.setting.split('=');
        const one = parsePolicy({ ...policyEnv(p), [name]: value });
        assert.not.ok(policyViolations(c, one).map(key).includes(key(v)), `${v.setting} does not allow ${key(v)}`);
        // Settings of one list variable add up; a boolean's is `true`.
        const cur = merged[name] ?? '';
        merged[name] =
          value === 'true' || cur === 'true' || cur === 'false' || cur === '' ? value : [...new Set([...cur.split(','), ...value.split(',')])].join(',');
      }
      assert.equal(policyViolations(c, parsePolicy(merged)), []);
    }),
    { numRuns: 300 },
  );
});

test('a bind under an allowed root passes, unless it reaches the Docker socket', () => {
  fc.assert(
    fc.property(
      absPath,
      fc.array(fc.constantFrom('srv', 'data', 'run', 'docker.sock', 'containerd.sock', 'x'), { maxLength: 3 }),
      fc.boolean(),
      (root, rest, socketOk) => {
        const source = [root, ...rest].join('/');
        const c = appConfigSchema.parse({ docker_image: 'img:1', volumes: [`${source}:/mnt`] });
        const p = { ...DEFAULT_HOST_POLICY, allowedBindRoots: [root], allowDockerSocket: socketOk };
        const rules = policyViolations(c, p).map((v) => v.rule);
        assert.not.ok(rules.includes('bind_mount'), `${source} under ${root}`);
        assert.is(rules.includes('docker_socket'), !socketOk && SOCKET_REACHING.has(resolvedPath(source)), source);
      },
    ),
    { numRuns: 500 },
  );
});

test('`..` never leads out of a bind root, nor around the Docker socket rule', () => {
  fc.assert(
    fc.property(absPath, relSegments, policyArb, (root, rel, p) => {
      const source = `${root}/${rel.join('/')}`;
      const c = appConfigSchema.parse({ docker_image: 'img:1', volumes: [`${source}:/mnt`] });
      const policy = { ...p, allowedBindRoots: [root] };
      const rules = policyViolations(c, policy).map((v) => v.rule);
      const where = resolve(source);
      const isSocket = DEFAULT_HOST_POLICY.dockerSockets.includes(resolvedPath(source));
      // Passes the bind rule only when it really lies under the root (or is the socket itself, which
      // only WORKER_ALLOW_DOCKER_SOCKET allows).
      assert.is(!rules.includes('bind_mount'), underSegments(where, resolve(root)) || isSocket, `${source} with root ${root}`);
      assert.is(rules.includes('docker_socket'), !p.allowDockerSocket && SOCKET_REACHING.has(resolvedPath(source)), source);
    }),
    { numRuns: 1000 },
  );
});

test('violations are sorted and listed once, whatever the order of the config', () => {
  fc.assert(
    fc.property(
      configArb.chain((c) =>
        fc.tuple(
          fc.constant(c),
          fc.shuffledSubarray(c.volumes, { minLength: c.volumes.length }),
          fc.shuffledSubarray(c.devices, { minLength: c.devices.length }),
        ),
      ),
      policyArb,
      ([c, volumes, devices], p) => {
        const a = policyViolations(c, p);
        const b = policyViolations({ ...c, volumes: [...volumes, ...volumes], devices: [...devices, ...devices] }, p);
        assert.equal(b, a);
        assert.is(new Set(a.map(key)).size, a.length);
      },
    ),
    { numRuns: 300 },
  );
});

test('examples: the message names each rule, the offending value and the setting that allows it', () => {
  const c = appConfigSchema.parse({
    docker_image: 'img:1',
    privileged: true,
    devices: ['/dev/ttyUSB0:/dev/ttyS0:rw'],
    networks: ['host'],
    volumes: ['/srv/data:/data:ro', 'pgdata:/var/lib/postgresql/data', '/srv/data/../../var/run/docker.sock:/var/run/docker.sock'],
  });
  const v = policyViolations(c, DEFAULT_HOST_POLICY);
  assert.equal(
    v.map((x) => [x.rule, x.field, x.detail, x.setting]),
    [
      ['privileged', 'privileged', 'true', 'WORKER_ALLOW_PRIVILEGED=true'],
      ['devices', 'devices', '/dev/ttyUSB0:/dev/ttyS0:rw', 'WORKER_ALLOW_DEVICES=/dev/ttyUSB0'],
      ['host_network', 'networks', 'host', 'WORKER_ALLOW_HOST_NETWORK=true'],
      ['bind_mount', 'volumes', '/srv/data:/data:ro', 'WORKER_ALLOWED_BIND_ROOTS=/srv/data'],
      ['docker_socket', 'volumes', '/srv/data/../../var/run/docker.sock:/var/run/docker.sock', 'WORKER_ALLOW_DOCKER_SOCKET=true'],
    ],
  );
  assert.is(refusalText(v.slice(0, 1)), "refused by this host's policy: privileged (privileged: true; allow with WORKER_ALLOW_PRIVILEGED=true)");
  // The socket through `..`, with its would-be root allowed: still refused.
  const sneaky = appConfigSchema.parse({ docker_image: 'img:1', volumes: ['/srv/data/../../var/run:/host-run'] });
  assert.equal(
    policyViolations(sneaky, { ...DEFAULT_HOST_POLICY, allowedBindRoots: ['/srv/data'] }).map((x) => [x.rule, x.setting]),
    [
      ['bind_mount', 'WORKER_ALLOWED_BIND_ROOTS=/srv/data,/var/run'],
      ['docker_socket', 'WORKER_ALLOW_DOCKER_SOCKET=true'],
    ],
  );
  assert.equal(
    policyViolations(sneaky, { ...DEFAULT_HOST_POLICY, allowedBindRoots: ['/var'] }).map((x) => x.rule),
    ['docker_socket'],
  );
  // A root is a directory, not a prefix: /srv/database is not under /srv/data.
  const prefix = appConfigSchema.parse({ docker_image: 'img:1', volumes: ['/srv/database:/db', '/srv/data/:/d'] });
  assert.equal(
    policyViolations(prefix, { ...DEFAULT_HOST_POLICY, allowedBindRoots: ['/srv/data/'] }).map((x) => x.detail),
    ['/srv/database:/db'],
  );
  // A device list allows only its paths (the host side of the mapping).
  const dev = appConfigSchema.parse({ docker_image: 'img:1', devices: ['/dev/ttyUSB0:/dev/ttyS0', '/dev/sda'] });
  assert.equal(
    policyViolations(dev, { ...DEFAULT_HOST_POLICY, allowDevices: ['/dev/ttyUSB0'] }).map((x) => [x.detail, x.setting]),
    [['/dev/sda', 'WORKER_ALLOW_DEVICES=/dev/ttyUSB0,/dev/sda']],
  );
  // DOCKER_HOST's own socket counts too.
  const own = appConfigSchema.parse({ docker_image: 'img:1', volumes: ['/srv/engine/docker.sock:/var/run/docker.sock'] });
  const policy = parsePolicy({ WORKER_ALLOWED_BIND_ROOTS: '/srv', DOCKER_HOST: 'unix:///srv/engine/docker.sock' });
  assert.equal(
    policyViolations(own, policy).map((x) => x.rule),
    ['docker_socket'],
  );
});

test.run();
