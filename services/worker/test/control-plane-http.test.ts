import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ControlPlaneRefusedError, ControlPlaneUnavailableError, httpControlPlaneClient } from '../src/identity/control-plane-client.ts';

/** The control plane client over node:http: what reaches the API, and how each kind of answer ends. */

const JOIN = { token: 't', host_id: 'h1', public_key: 'U', apps: ['web'], consumer: { ack_wait_seconds: 30, inactive_threshold_hours: 72 } };

async function serve(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

test('a join is a JSON POST to /api/v2/hosts/join under NEBULA_URL (a path prefix kept)', async () => {
  let seen: { method?: string; url?: string; type?: string; body?: unknown } = {};
  const api = await serve((req, body, res) => {
    seen = { method: req.method, url: req.url, type: req.headers['content-type'], body: JSON.parse(body) };
    res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"forbidden","message":"token used"}');
  });
  try {
    const err = await failure(httpControlPlaneClient(`${api.url}/nebula`, { timeoutMs: 5000 }).join(JOIN));
    assert.equal(seen, { method: 'POST', url: '/nebula/api/v2/hosts/join', type: 'application/json', body: JOIN });
    assert.instance(err, ControlPlaneRefusedError);
    assert.match(err.message, 'HTTP 403: forbidden: token used');
  } finally {
    api.server.close();
  }
});

test('a redirect is not followed: refused, naming where it pointed', async () => {
  let calls = 0;
  const api = await serve((_req, _body, res) => {
    calls++;
    res.writeHead(301, { location: 'https://elsewhere.example/api/v2/hosts/join' }).end();
  });
  try {
    const err = await failure(httpControlPlaneClient(api.url, { timeoutMs: 5000 }).join(JOIN));
    assert.instance(err, ControlPlaneRefusedError);
    assert.match(err.message, /redirected \(HTTP 301\) to https:\/\/elsewhere\.example/);
    assert.is(calls, 1);
  } finally {
    api.server.close();
  }
});

test('nothing listening: retryable, with the socket error code', async () => {
  const err = await failure(httpControlPlaneClient(`http://127.0.0.1:${await freePort()}`, { timeoutMs: 5000 }).renew({} as never));
  assert.instance(err, ControlPlaneUnavailableError);
  assert.match(err.message, 'ECONNREFUSED');
});

test('an answer that starts but never ends still meets the deadline', async () => {
  const api = await serve((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"host_id":');
  });
  try {
    const err = await failure(httpControlPlaneClient(api.url, { timeoutMs: 300 }).join(JOIN));
    assert.instance(err, ControlPlaneUnavailableError);
    assert.match(err.message, 'no answer within 0.3 s');
  } finally {
    api.server.closeAllConnections();
    api.server.close();
  }
});

test('an answer over 1 MB is an error, not held in memory', async () => {
  const api = await serve((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`"${'x'.repeat(2 * 1024 * 1024)}"`);
  });
  try {
    const err = await failure(httpControlPlaneClient(api.url, { timeoutMs: 5000 }).join(JOIN));
    assert.instance(err, ControlPlaneUnavailableError);
    assert.match(err.message, 'larger than');
  } finally {
    api.server.close();
  }
});

test.run();
