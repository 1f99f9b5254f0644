import { request } from 'node:http';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startStallingRegistry } from '../src/index.ts';

/** The stalling proxy in front of the local registry (127.0.0.1:5000, with nebula/echo:1 pushed). */
const MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

test('passes /v2/ and manifests through; a blob download sends its headers and the first bytes, then nothing', async () => {
  const proxy = await startStallingRegistry({ bytesBeforeStall: 64 });
  try {
    assert.is((await fetch(`http://${proxy.host}/v2/`)).status, 200);
    const manifest = (await (await fetch(`http://${proxy.host}/v2/nebula/echo/manifests/1`, { headers: { accept: MANIFEST } })).json()) as {
      layers: Array<{ digest: string; size: number }>;
    };
    const layer = manifest.layers[0]!;
    assert.ok(layer.size > 64);
    const got = await new Promise<{ status: number; length: string | undefined; chunks: () => Buffer }>((resolve, reject) => {
      const parts: Buffer[] = [];
      request(`http://${proxy.host}/v2/nebula/echo/blobs/${layer.digest}`, (res) => {
        res.on('data', (d: Buffer) => {
          parts.push(d);
          if (Buffer.concat(parts).length >= 64)
            resolve({ status: res.statusCode ?? 0, length: res.headers['content-length'], chunks: () => Buffer.concat(parts) });
        });
        res.on('error', () => undefined);
      })
        .on('error', reject)
        .end();
    });
    assert.is(got.status, 200);
    assert.is(got.length, String(layer.size), "the registry's headers, promising the whole blob");
    assert.is(proxy.stalled, 1);
    await proxy.close();
    assert.is(got.chunks().length, 64, 'nothing after the first bytes, up to the close');
  } finally {
    await proxy.close().catch(() => undefined);
  }
});

test('when it stops stalling, blobs pass whole', async () => {
  const proxy = await startStallingRegistry();
  proxy.stalling = false;
  try {
    const manifest = (await (await fetch(`http://${proxy.host}/v2/nebula/echo/manifests/1`, { headers: { accept: MANIFEST } })).json()) as {
      layers: Array<{ digest: string; size: number }>;
    };
    const layer = manifest.layers[0]!;
    const blob = await (await fetch(`http://${proxy.host}/v2/nebula/echo/blobs/${layer.digest}`)).arrayBuffer();
    assert.is(blob.byteLength, layer.size);
    assert.is(proxy.stalled, 0);
  } finally {
    await proxy.close();
  }
});

test.run();
