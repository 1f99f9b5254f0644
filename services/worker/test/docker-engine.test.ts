import { randomBytes } from 'node:crypto';
import { freePort, waitFor } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createDockerClient } from '../src/runtime/docker-client.ts';

const docker = createDockerClient(process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock');
const ECHO = 'nebula/echo:1';
const REGISTRY = '127.0.0.1:5000';

function follow(stream: NodeJS.ReadableStream): Promise<unknown[]> {
  return new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null, out: unknown[]) => (err ? reject(err) : resolve(out))));
}

test('a container from the local test image: created, started, inspected, answered over HTTP, removed', async () => {
  const port = await freePort();
  const name = `nebula-test-${randomBytes(4).toString('hex')}`;
  const container = await docker.createContainer({
    name,
    Image: ECHO,
    Env: ['PORT=8080', 'GREETING=hello'],
    ExposedPorts: { '8080/tcp': {} },
    Labels: { 'io.nebula.test': 'true' },
    HostConfig: { PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] } },
  });
  try {
    await container.start();
    const info = await container.inspect();
    assert.is(info.State.Running, true);
    assert.is(info.Name, `/${name}`);
    const body = await waitFor(
      'the container answering',
      async () => (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as { port: number; env: Record<string, string> },
    );
    assert.is(body.port, 8080);
    assert.is(body.env.GREETING, 'hello');
    await container.stop({ t: 1 });
  } finally {
    await container.remove({ force: true });
  }
  const left = await docker.listContainers({ all: true, filters: { name: [name] } });
  assert.is(left.length, 0);
});

test('an image pushed to the local registry is pulled back', async () => {
  const tag = `pull-${randomBytes(4).toString('hex')}`;
  const ref = `${REGISTRY}/nebula/echo:${tag}`;
  await docker.getImage(ECHO).tag({ repo: `${REGISTRY}/nebula/echo`, tag });
  await follow(await docker.getImage(ref).push({ authconfig: { serveraddress: REGISTRY } }));
  await docker.getImage(ref).remove();
  let missing = false;
  await docker
    .getImage(ref)
    .inspect()
    .catch(() => (missing = true));
  assert.ok(missing, 'local tag removed before the pull');
  const progress = (await follow(await docker.pull(ref))) as Array<{ status?: string }>;
  assert.ok(
    progress.some((p) => p.status?.includes('Digest: sha256:')),
    'pulled from the registry',
  );
  const img = await docker.getImage(ref).inspect();
  assert.ok(img.RepoDigests.some((d) => d.startsWith(`${REGISTRY}/nebula/echo@sha256:`)));
  await docker.getImage(ref).remove();
});

test.run();
