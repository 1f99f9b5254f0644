import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startFleet, waitFor } from '../src/index.ts';

test('two hosts, each with its own engine and address, both pulling from the one registry', async () => {
  const fleet = await startFleet({ hosts: 2, images: ['nebula/echo:1'] });
  try {
    const [a, b] = fleet.hosts;
    assert.ok(a && b);
    assert.is.not(a.address, b.address);
    for (const [i, h] of fleet.hosts.entries()) {
      await h.docker('run', '-d', '--name', 'echo', '-p', '8080:80', '-e', `WHO=${i}`, 'nebula/echo:1');
    }
    for (const [i, h] of fleet.hosts.entries()) {
      const body = await waitFor(`echo on ${h.name}`, async () => (await (await fetch(`http://${h.address}:8080/`)).json()) as { env: Record<string, string> });
      assert.is(body.env.WHO, String(i), 'each address reaches its own host');
    }
    const pulled = await b.docker('pull', '127.0.0.1:5000/nebula/echo:1');
    assert.match(pulled, '127.0.0.1:5000/nebula/echo:1');
    assert.not.match(await a.docker('ps', '--format', '{{.Names}}'), /^$/);
    // An engine restart keeps the host usable.
    await a.stopEngine();
    await a.startEngine();
    assert.match(await a.docker('ps', '-a', '--format', '{{.Names}}'), 'echo');
  } finally {
    await fleet.cleanup();
  }
  const { execFileSync } = await import('node:child_process');
  assert.not.match(execFileSync('ip', ['netns', 'list']).toString(), `nbt${fleet.id}`);
});

test.run();
