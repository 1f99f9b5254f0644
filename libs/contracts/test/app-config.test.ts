import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appConfigPatchSchema, appConfigSchema, appNameSchema, containerCount, heartbeatSchema, hostIdFromHostname, portBindings } from '../src/index.ts';

function issues(input: unknown): string[] {
  const r = appConfigSchema.safeParse(input);
  return r.success ? [] : [...new Set(r.error.issues.map((i) => i.path.join('.')))];
}

test('only docker_image is required; the original defaults apply', () => {
  const cfg = appConfigSchema.parse({ docker_image: 'nginx' });
  assert.equal(cfg.containers_per, { server: 1 });
  assert.equal(cfg.networks, ['nebula', 'bridge']);
  assert.equal(cfg.env_vars, {});
  assert.is(cfg.running, true);
  assert.is(cfg.rolling_restart, false);
  assert.equal(cfg.starting_ports, []);
  assert.equal(issues({}), ['docker_image']);
});

test('unknown fields are rejected, each wrong field is named', () => {
  assert.equal(issues({ docker_image: 'nginx', bogus: 1 }), ['']);
  assert.equal(issues({ docker_image: 'nginx', starting_ports: [70000], privileged: 'yes' }).sort(), ['privileged', 'starting_ports.0']);
});

test('ports: ints and host->container maps, 1-65535, no host port twice', () => {
  assert.ok(appConfigSchema.safeParse({ docker_image: 'x', starting_ports: [80, { '8081': '80' }, { '9000': 9001 }] }).success);
  assert.equal(issues({ docker_image: 'x', starting_ports: [0] }), ['starting_ports.0']);
  assert.equal(issues({ docker_image: 'x', starting_ports: [{ '81': '70000' }] }), ['starting_ports.0.81']);
  assert.equal(issues({ docker_image: 'x', starting_ports: [80, { '80': '81' }] }), ['starting_ports']);
  // 2 containers per server: 80,81 and 81,82 overlap.
  assert.equal(issues({ docker_image: 'x', starting_ports: [80, 81], containers_per: { server: 2 } }), ['starting_ports']);
  assert.equal(issues({ docker_image: 'x', starting_ports: [65535], containers_per: { server: 2 } }), ['starting_ports']);
});

test('port bindings count up per container', () => {
  assert.equal(portBindings([80, { '81': '8080' }], 2), [
    { host: 82, container: 80 },
    { host: 83, container: 8080 },
  ]);
});

test('containers_per: exactly one key; counts per core, server, memory', () => {
  assert.equal(issues({ docker_image: 'x', containers_per: { server: 1, cpu: 1 } }), ['containers_per']);
  assert.equal(issues({ docker_image: 'x', containers_per: {} }), ['containers_per']);
  assert.equal(issues({ docker_image: 'x', containers_per: { gpu: 1 } }), ['containers_per']);
  const host = { cores: 4, memory_mb: 8192 };
  assert.is(containerCount({ cpu: 2 }, host), 8);
  assert.is(containerCount({ cpu: 0.1 }, host), 1);
  assert.is(containerCount({ server: 3 }, host), 3);
  assert.is(containerCount({ instance: 0 }, host), 0);
  assert.is(containerCount({ memory: 1000 }, host), 8);
  assert.is(containerCount({ mem: 100000 }, host), 1);
});

test('limits: memory below 16 MB and a cpu factor above 64 are refused, naming the field', () => {
  assert.equal(issues({ docker_image: 'x', containers_per: { memory: 15 } }), ['containers_per.memory']);
  assert.equal(issues({ docker_image: 'x', containers_per: { mem: 1 } }), ['containers_per.mem']);
  assert.equal(issues({ docker_image: 'x', containers_per: { cpu: 65 } }), ['containers_per.cpu']);
  assert.equal(issues({ docker_image: 'x', memory_limit_mb: 8 }), ['memory_limit_mb']);
  assert.equal(issues({ docker_image: 'x', cpu_limit: 64.5 }), ['cpu_limit']);
  for (const ok of [{ containers_per: { memory: 16 } }, { containers_per: { cpu: 64 } }, { memory_limit_mb: 16 }, { cpu_limit: 64 }]) {
    assert.equal(issues({ docker_image: 'x', ...ok }), [], JSON.stringify(ok));
  }
  const r = appConfigSchema.safeParse({ docker_image: 'x', containers_per: { memory: 4 } });
  assert.match(r.success ? '' : (r.error.issues[0]?.message ?? ''), /at least 16 MB/);
  assert.not.ok(appConfigPatchSchema.safeParse({ memory_limit_mb: 15 }).success, 'patches too');
  assert.not.ok(appConfigPatchSchema.safeParse({ cpu_limit: 100 }).success, 'patches too');
});

test('log rotation: 10 MB x 3 files by default, configurable per app', () => {
  const cfg = appConfigSchema.parse({ docker_image: 'x' });
  assert.is(cfg.log_max_size_mb, 10);
  assert.is(cfg.log_max_files, 3);
  assert.is(appConfigSchema.parse({ docker_image: 'x', log_max_size_mb: 50, log_max_files: 5 }).log_max_size_mb, 50);
  assert.equal(issues({ docker_image: 'x', log_max_size_mb: 0, log_max_files: 1.5 }).sort(), ['log_max_files', 'log_max_size_mb']);
  assert.ok(appConfigPatchSchema.safeParse({ log_max_files: 2 }).success);
});

test('heartbeats may carry the drift repaired per app', () => {
  const hb = {
    v: 1,
    host: 'h1',
    apps: [
      { app: 'web', incarnation: 1, revision: 2, containers: [], repairs: 2, last_repair: { at: new Date(0).toISOString(), what: 'created web-2: missing' } },
    ],
    cores: 2,
    memory_mb: 1024,
    worker_version: '1',
    interval_seconds: 5,
    at: new Date(0).toISOString(),
  };
  assert.equal(heartbeatSchema.parse(hb).apps[0]?.last_repair, { at: '1970-01-01T00:00:00.000Z', what: 'created web-2: missing' });
  assert.is(
    heartbeatSchema.parse({ ...hb, apps: [{ app: 'web', incarnation: null, revision: null, containers: [] }] }).apps[0]?.repairs,
    undefined,
    'older workers send neither',
  );
  assert.not.ok(heartbeatSchema.safeParse({ ...hb, apps: [{ ...hb.apps[0], repairs: -1 }] }).success);
});

test('networks: host or none alone', () => {
  assert.ok(appConfigSchema.safeParse({ docker_image: 'x', networks: ['host'] }).success);
  assert.equal(issues({ docker_image: 'x', networks: ['host', 'bridge'] }), ['networks']);
  assert.equal(issues({ docker_image: 'x', networks: ['a b'] }), ['networks.0']);
});

test('volumes, devices, env names, labels in Docker syntax', () => {
  assert.ok(
    appConfigSchema.safeParse({
      docker_image: 'x',
      volumes: ['/data:/data', 'named:/var/lib/x:ro', '/a:/b:rw,z'],
      devices: ['/dev/null', '/dev/fuse:/dev/fuse:rwm'],
      env_vars: { A: '1', _b: 2, 'java.opt': true },
      labels: { 'com.example/team': 'core' },
    }).success,
  );
  assert.equal(issues({ docker_image: 'x', volumes: ['data'] }), ['volumes.0']);
  assert.equal(issues({ docker_image: 'x', volumes: ['/a:relative'] }), ['volumes.0']);
  assert.equal(issues({ docker_image: 'x', volumes: ['/a:/b:ro,rw'] }), ['volumes.0']);
  assert.equal(issues({ docker_image: 'x', devices: ['/dev/a:/dev/b:rwx'] }), ['devices.0']);
  assert.equal(issues({ docker_image: 'x', env_vars: { '1A': 'x' } }), ['env_vars']);
  assert.equal(issues({ docker_image: 'x', labels: { 'io.nebula.app': 'x' } }), ['labels.io.nebula.app']);
});

test('env values are strings; [] is an empty env (original POST update)', () => {
  assert.equal(appConfigSchema.parse({ docker_image: 'x', env_vars: { A: 1, B: false } }).env_vars, { A: '1', B: 'false' });
  assert.equal(appConfigSchema.parse({ docker_image: 'x', env_vars: [] }).env_vars, []);
  assert.equal(issues({ docker_image: 'x', env_vars: ['A=1'] }), ['env_vars']);
});

test('patches: any subset, still strict', () => {
  assert.ok(appConfigPatchSchema.safeParse({ running: false }).success);
  assert.ok(appConfigPatchSchema.safeParse({}).success);
  assert.not.ok(appConfigPatchSchema.safeParse({ nope: 1 }).success);
});

test('app names: subject-, container- and path-safe', () => {
  for (const good of ['web', 'Web_2', 'a-b', 'x'.repeat(63)]) assert.ok(appNameSchema.safeParse(good).success, good);
  for (const bad of ['', 'a.b', 'a b', 'a*', 'a>', 'a/b', '-a', '_a', 'x'.repeat(64), 'café', '..']) {
    assert.not.ok(appNameSchema.safeParse(bad).success, bad);
  }
  assert.is(hostIdFromHostname('node-1.example.com'), 'node-1-example-com');
});

test.run();
