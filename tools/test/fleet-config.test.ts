import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DEFAULT_FLEET_IMAGES, FleetConfigError, fleetConfig, MAX_FLEET_HOSTS, parseApps, parseFleetHosts, workerEnv } from '../src/fleet/config.ts';
import { type FleetState, parseState } from '../src/fleet/state.ts';
import { type HostRow, hostsJson, hostsTable, renderTable } from '../src/fleet/table.ts';

const configError = (f: () => unknown, variable: string) => {
  try {
    f();
  } catch (err) {
    assert.instance(err, FleetConfigError);
    assert.is((err as FleetConfigError).variable, variable);
    assert.match((err as Error).message, variable);
    return;
  }
  assert.unreachable(`no error for ${variable}`);
};

test('FLEET_HOSTS: unset or empty is 0; a whole number up to the maximum is taken; anything else names the variable', () => {
  assert.is(parseFleetHosts(undefined), 0);
  assert.is(parseFleetHosts(' '), 0);
  fc.assert(fc.property(fc.integer({ min: 0, max: MAX_FLEET_HOSTS }), (n) => parseFleetHosts(String(n)) === n));
  fc.assert(
    fc.property(
      fc.oneof(
        fc.integer({ min: MAX_FLEET_HOSTS + 1 }).map(String),
        fc.string().filter((s) => !/^\s*\d*\s*$/.test(s)),
      ),
      (raw) => configError(() => parseFleetHosts(raw), 'FLEET_HOSTS'),
    ),
  );
});

test('APP_NAME: a comma-separated list of app names; a bad name or a repeat names the variable', () => {
  assert.equal(parseApps(' web, db ,,'), ['web', 'db']);
  assert.equal(parseApps(undefined), []);
  configError(() => parseApps('web,bad.name'), 'APP_NAME');
  configError(() => parseApps('web,web'), 'APP_NAME');
});

test('the config: API URL from NEBULA_URL or API_PORT, the local admin, images, the state folder', () => {
  const c = fleetConfig({ FLEET_HOSTS: '3', APP_NAME: 'web', API_PORT: '18080', BASIC_AUTH_USER: 'admin', BASIC_AUTH_PASSWORD: 'pw' }, '/repo');
  assert.equal(c, {
    hosts: 3,
    apps: ['web'],
    deviceGroup: null,
    images: DEFAULT_FLEET_IMAGES,
    dir: '/repo/.stack/fleet',
    apiUrl: 'http://127.0.0.1:18080',
    auth: { kind: 'basic', user: 'admin', password: 'pw' },
  });
  const t = fleetConfig({ NEBULA_URL: 'http://api:8080/', AUTH_TOKEN: 'tok', FLEET_IMAGES: '', NEBULA_FLEET_DIR: '/x' }, '/repo');
  assert.equal([t.apiUrl, t.auth, t.images, t.dir], ['http://api:8080', { kind: 'bearer', token: 'tok' }, [], '/x']);
  configError(() => fleetConfig({ NEBULA_URL: 'not a url' }, '/repo'), 'NEBULA_URL');
  assert.is(fleetConfig({ DEVICE_GROUP: 'edge' }, '/repo').deviceGroup, 'edge');
  configError(() => fleetConfig({ DEVICE_GROUP: 'no.dots' }, '/repo'), 'DEVICE_GROUP');
});

test("a worker's environment: npm start's settings, never the API's credentials or the machine's host id; the host's own over it", () => {
  const secret = fc.string({ minLength: 1 });
  fc.assert(
    fc.property(secret, secret, fc.dictionary(fc.stringMatching(/^[A-Z][A-Z_]{0,12}$/), fc.string()), (pw, tok, extra) => {
      const env = workerEnv(
        { ...extra, BASIC_AUTH_USER: 'admin', BASIC_AUTH_PASSWORD: pw, AUTH_TOKEN: tok, HOST_ID: 'machine', NEBULA_CREDENTIALS_FILE: '/m', LOG_LEVEL: 'debug' },
        { HOST_ID: 'fleet-1', NEBULA_CREDENTIALS_FILE: '/f/fleet-1/credentials.json' },
      );
      assert.ok(!('BASIC_AUTH_PASSWORD' in env) && !('AUTH_TOKEN' in env) && !('BASIC_AUTH_USER' in env));
      assert.is(env.HOST_ID, 'fleet-1');
      assert.is(env.NEBULA_CREDENTIALS_FILE, '/f/fleet-1/credentials.json');
      assert.is(env.LOG_LEVEL, 'debug');
    }),
  );
});

const row = fc.record({
  host_id: fc.stringMatching(/^fleet-[1-9]\d?$/),
  address: fc.ipV4(),
  apps: fc.array(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), { maxLength: 3 }),
  engine: fc.constantFrom<'up' | 'down'>('up', 'down'),
  worker: fc.constantFrom<'running' | 'exited'>('running', 'exited'),
});

test('the table: a header and a line per host, columns aligned, every value shown; the JSON has the same hosts', () => {
  fc.assert(
    fc.property(fc.array(row, { maxLength: 8 }), (rows: HostRow[]) => {
      const lines = hostsTable(rows).split('\n');
      assert.is(lines.length, rows.length + 1);
      assert.match(lines[0]!, /^HOST ID\s+ADDRESS\s+APPS\s+ENGINE\s+WORKER$/);
      const col = lines[0]!.indexOf('ADDRESS');
      for (const [i, r] of rows.entries()) {
        const l = lines[i + 1]!;
        assert.ok(l.startsWith(r.host_id));
        assert.is(l.indexOf(r.address, r.host_id.length), col, 'the address column is aligned');
        assert.ok(l.endsWith(r.worker) && l.trimEnd() === l);
        assert.ok(l.includes(r.apps.length > 0 ? r.apps.join(',') : '-'));
      }
      assert.equal(
        (JSON.parse(hostsJson(rows)) as HostRow[]).map((r) => [r.host_id, r.address, r.apps]),
        rows.map((r) => [r.host_id, r.address, r.apps]),
      );
    }),
  );
  assert.is(renderTable(['A', 'B'], [['long value', 'x']]), 'A           B\nlong value  x');
});

test('the state file: what was written reads back; anything else is no state', () => {
  const state: FleetState = {
    v: 1,
    owner: { pid: 10, start: '99' },
    phase: 'running',
    started_at: '2026-01-01T00:00:00.000Z',
    api_url: 'http://127.0.0.1:8080',
    run: { id: 'abcde', dir: '/tmp/nebula-local-fleet-10-abcde' },
    hosts: [
      {
        host_id: 'fleet-1',
        address: '10.232.40.11',
        apps: ['web'],
        netns: 'nbfabcdeh1',
        docker_host: 'unix:///tmp/x/docker.sock',
        engine: { pid: 11, start: '100' },
        worker: null,
        worker_exit: null,
        log: '/r/.stack/fleet/fleet-1/worker.log',
      },
    ],
  };
  assert.equal(parseState(JSON.stringify(state)), state);
  for (const bad of [
    '',
    '{',
    'null',
    '[]',
    JSON.stringify({ ...state, v: 2 }),
    JSON.stringify({ ...state, owner: { pid: 'x' } }),
    JSON.stringify({ ...state, hosts: [{}] }),
  ]) {
    assert.is(parseState(bad), null, bad);
  }
  fc.assert(fc.property(fc.string(), (s) => parseState(s) === null || typeof parseState(s) === 'object'));
});

test.run();
