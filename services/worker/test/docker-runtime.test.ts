import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  EngineTimeoutError,
  EngineUnavailableError,
  ImageNotFoundError,
  isRetryable,
  OperationAbortedError,
  PortConflictError,
  RegistryUnavailableError,
} from '../src/errors.ts';
import type { ContainerSpec } from '../src/runtime/container-runtime.ts';
import { createDockerClient } from '../src/runtime/docker-client.ts';
import { DockerRuntime } from '../src/runtime/docker-runtime.ts';
import { registryAuthResolver } from '../src/runtime/registry-auth.ts';
import { docker, dockerCli, ECHO, freePortRange, REGISTRY } from './docker-helpers.ts';
import { suffix } from './helpers.ts';

/** How the real runtime names what goes wrong: retryable or not decides nak or term. */
const runtime = new DockerRuntime(docker);

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

test('an engine that does not answer is retryable', async () => {
  const gone = new DockerRuntime(createDockerClient(`unix://${join(tmpdir(), `no-docker-${suffix()}.sock`)}`));
  const err = await rejection(gone.listContainers('h'));
  assert.instance(err, EngineUnavailableError);
  assert.ok(isRetryable(err));
  assert.is(await gone.ping(), false);
});

test('an engine that accepts connections and never answers: each call fails at its deadline, a stop gets its stop timeout on top, an abort ends a call at once', async () => {
  const { createServer } = await import('node:net');
  const path = join(tmpdir(), `silent-docker-${suffix()}.sock`);
  // Connections that carried a request, and those of them the client closed again.
  const asked = new Set<object>();
  const gone = new Set<object>();
  const silent = createServer((s) => {
    s.on('data', () => asked.add(s)); // read, never answered
    s.on('close', () => gone.add(s));
  });
  await new Promise<void>((r) => silent.listen(path, () => r()));
  try {
    const rt = new DockerRuntime(createDockerClient(`unix://${path}`), { callTimeoutMs: 300 });
    const listed = await rejection(rt.listContainers('h'));
    assert.instance(listed, EngineTimeoutError);
    assert.ok(isRetryable(listed));
    assert.is((listed as Error).message, 'docker engine call `list containers` did not answer within 0.3 s');
    const stopped = await rejection(rt.stop('0123456789abcdef', 1, { name: 'web-1' }));
    assert.instance(stopped, EngineTimeoutError);
    assert.is((stopped as Error).message, 'docker engine call `stop web-1` did not answer within 1.3 s');
    const ac = new AbortController();
    const started = rt.start('0123456789abcdef', { name: 'web-2', signal: ac.signal });
    ac.abort(new Error('a newer revision'));
    const aborted = await rejection(started);
    assert.instance(aborted, OperationAbortedError);
    assert.is((aborted as Error).message, 'docker engine call `start web-2` was interrupted: a newer revision');
    assert.is(await rt.ping(), false);
    // list, stop and ping reached the engine and were given up, not left open on its socket (the
    // start was aborted before it was sent).
    await waitFor('every request given up', () => asked.size === 3 && [...asked].every((c) => gone.has(c)));
  } finally {
    silent.close();
  }
});

test('pull: an unknown repository is permanent, an unreachable registry is retryable', async () => {
  const missing = await rejection(runtime.pull(`${REGISTRY}/nebula-missing-${suffix()}/echo:1`));
  assert.instance(missing, ImageNotFoundError);
  assert.not.ok(isRetryable(missing));
  const down = await rejection(runtime.pull(`127.0.0.1:${await freePort()}/nebula/echo:1`));
  assert.instance(down, RegistryUnavailableError);
  assert.ok(isRetryable(down));
});

test("a host port held by a container that is not Nebula's is a permanent PortConflictError", async () => {
  const port = await freePortRange(1);
  const theirs = await dockerCli('run', '-d', '--label', 'io.nebula.test=true', '-p', `${port}:80`, ECHO);
  const spec: ContainerSpec = {
    name: `nebula-test-${suffix()}`,
    image: ECHO,
    env: {},
    ports: [{ host: port, container: 80 }],
    volumes: [],
    devices: [],
    privileged: false,
    networks: ['bridge'],
    command: null,
    entrypoint: null,
    labels: { 'io.nebula.test': 'true' },
    memoryLimitMb: null,
    cpuLimit: null,
    healthcheck: null,
  };
  const id = await runtime.create(spec);
  try {
    const err = await rejection(runtime.start(id, { name: spec.name }));
    assert.instance(err, PortConflictError);
    assert.not.ok(isRetryable(err));
    assert.match((err as Error).message, `start ${spec.name}: `);
    assert.match((err as Error).message, /port is already allocated|address already in use/);
  } finally {
    await runtime.remove(id);
    await dockerCli('rm', '-f', theirs);
  }
});

test('image info of a local image; null for a missing one; the nebula network is ensured idempotently', async () => {
  const info = await runtime.imageInfo(ECHO);
  assert.match(info?.id ?? '', /^sha256:/);
  assert.is(await runtime.imageInfo(`nebula/missing-${suffix()}:1`), null);
  await Promise.all([runtime.ensureNetwork('nebula'), runtime.ensureNetwork('nebula')]);
  const nets = await docker.listNetworks({ filters: { name: ['nebula'] } });
  assert.is(nets.filter((n) => n.Name === 'nebula').length, 1);
});

test('a missing network asked for by several apps at once is created once; duplicates made by a race are reduced to one', async () => {
  const name = `nebula-test-${suffix()}`;
  const named = async () => (await docker.listNetworks({ filters: { name: [name] } })).filter((n) => n.Name === name);
  try {
    await Promise.all(Array.from({ length: 5 }, () => runtime.ensureNetwork(name)));
    assert.is((await named()).length, 1);
    // What two processes racing leave behind (or an older worker did): two networks of one name.
    await docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: false });
    assert.is((await named()).length, 2);
    await runtime.ensureNetwork(name);
    assert.is((await named()).length, 1);
  } finally {
    for (const n of await named())
      await docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined);
  }
});

test('registry credentials: from the environment for their registry, else from the Docker config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nebula-auth-'));
  const path = join(dir, 'config.json');
  writeFileSync(
    path,
    JSON.stringify({
      auths: {
        'registry.example.com': { auth: Buffer.from('u1:p:1').toString('base64') },
        'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') },
      },
    }),
  );
  const fileOnly = registryAuthResolver({ dockerConfigPath: path });
  assert.equal(fileOnly('registry.example.com'), { username: 'u1', password: 'p:1', serveraddress: 'registry.example.com' });
  assert.is(fileOnly('docker.io')?.username, 'hub');
  assert.is(fileOnly('other.example.com'), undefined);
  const env = registryAuthResolver({ user: 'me', password: 'secret', host: 'registry.example.com', dockerConfigPath: path });
  assert.is(env('registry.example.com')?.username, 'me');
  assert.is(env('docker.io')?.username, 'hub');
  assert.is(
    registryAuthResolver({ user: 'me', password: 'x', dockerConfigPath: join(dir, 'none.json') })('docker.io')?.serveraddress,
    'https://index.docker.io/v1/',
  );
});

test.run();
