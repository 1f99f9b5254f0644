import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
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
    // The machine at the gateway: a container on a host reaches a port the machine listens on there.
    assert.match(execFileSync('ip', ['-n', a.netns, 'route', 'show', 'default']).toString(), `via ${fleet.gateway} `);
    const server = createServer((_req, res) => res.end('machine')).listen(0, fleet.gateway);
    try {
      await new Promise((r) => server.once('listening', r));
      const port = (server.address() as { port: number }).port;
      // busybox nc (its static wget crashes here): a plain HTTP/1.0 request.
      const got = await a.docker(
        'run',
        '--rm',
        '--entrypoint',
        'sh',
        'nebula/echo:1',
        '-c',
        `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${fleet.gateway} ${port}`,
      );
      assert.match(got, /\r\n\r\nmachine$/);
    } finally {
      server.close();
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
  assert.not.match(execFileSync('ip', ['netns', 'list']).toString(), `nbt${fleet.id}`);
});

test.run();
