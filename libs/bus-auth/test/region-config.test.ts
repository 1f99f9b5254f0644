import { HUB_DOMAIN } from '@nebula/contracts';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ClusterConfigError,
  createBusSetup,
  hubLeafConfig,
  REGION_LOCAL_SUBJECTS,
  regionLinkPermissions,
  regionServerConfig,
  resolverDirOf,
} from '../src/index.ts';

/** A region's leaf server config and the hub's leaf listener (pure), and the link's rights. */

const setup = await createBusSetup();
const busConfig = setup.serverConfig('/var/lib/nebula/bus/accounts');
const base = {
  busConfig,
  host: '0.0.0.0',
  clientPort: 4222,
  storeDir: '/r/js',
  resolverDir: '/r/accounts',
  linkCredsFile: '/r/link.creds',
  accountPublicKey: setup.keys.account_public_key,
};
const regionArb = fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/).filter((r) => r !== HUB_DOMAIN);

test("a region's server: its domain is its name, one remote to the hub binding the NEBULA account, its own resolver folder, the bus's operator", () => {
  fc.assert(
    fc.property(regionArb, fc.integer({ min: 1024, max: 60_000 }), (region, port) => {
      const conf = regionServerConfig({ ...base, region, hubUrls: [`nats-leaf://127.0.0.1:${port}`] });
      assert.ok(conf.includes(`domain: "${region}"`));
      assert.ok(conf.includes(`server_name: "${region}-1"`));
      assert.ok(conf.includes(`urls: ["nats-leaf://127.0.0.1:${port}"]`));
      assert.ok(conf.includes(`account: "${setup.keys.account_public_key}"`));
      assert.is(resolverDirOf(conf), '/r/accounts');
      assert.ok(conf.startsWith(busConfig.split('\n')[0] ?? ''), 'the same operator');
    }),
  );
});

test('a link off loopback only over TLS, with the CA that signed the hub; bad names and URLs refused', () => {
  assert.throws(() => regionServerConfig({ ...base, region: 'eu', hubUrls: ['nats-leaf://10.0.0.1:7422'] }), /without TLS/);
  assert.throws(() => regionServerConfig({ ...base, region: 'eu', hubUrls: ['tls://10.0.0.1:7422'] }), /CA/);
  assert.ok(regionServerConfig({ ...base, region: 'eu', hubUrls: ['tls://10.0.0.1:7422'], hubCaFile: '/ca.pem' }).includes('ca_file: "/ca.pem"'));
  assert.throws(() => regionServerConfig({ ...base, region: 'eu', hubUrls: ['nats://127.0.0.1:7422'] }), /nats-leaf/);
  assert.throws(() => regionServerConfig({ ...base, region: 'eu', hubUrls: [] }), /no hub URL/);
  for (const bad of ['hub', 'EU', '1eu', 'e_u', ''])
    assert.throws(
      () => regionServerConfig({ ...base, region: bad, hubUrls: ['nats-leaf://127.0.0.1:7422'] }),
      (e: unknown) => e instanceof ClusterConfigError,
      bad,
    );
  assert.throws(() => hubLeafConfig({ host: '0.0.0.0', port: 7422 }), /without TLS/);
  assert.ok(hubLeafConfig({ host: '127.0.0.1', port: 7422 }).includes('listen: "127.0.0.1:7422"'));
  assert.ok(hubLeafConfig({ host: '0.0.0.0', port: 7422, tls: { certFile: '/c', keyFile: '/k' } }).includes('cert_file: "/c"'));
});

test("the link carries everything but what a region's streams capture (both ways), and never app revisions or group messages from a region", () => {
  const p = regionLinkPermissions();
  for (const s of REGION_LOCAL_SUBJECTS) {
    assert.ok(p.pub.deny?.includes(s), `pub ${s}`);
    assert.ok(p.sub.deny?.includes(s), `sub ${s}`);
  }
  assert.ok(p.pub.deny?.includes('apps.>') && p.pub.deny?.includes('groups.>'));
  assert.equal(REGION_LOCAL_SUBJECTS, ['results.>', 'hosts.>', 'events.>']);
});

test.run();
