import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  FAMILIES,
  type HostFamily,
  MAX_HOSTS,
  MAX_LINK_NAME,
  mountsUnder,
  newRunId,
  parseIpAddrs,
  parseLinkNames,
  parseNetnsList,
  parseRunDir,
  parseStat,
  pickSubnet,
  runIdOfName,
  runNames,
  SUBNETS,
  withDescendants,
} from '../src/index.ts';

const family = fc.constantFrom<HostFamily>(...Object.values(FAMILIES));
const runId = fc.stringMatching(/^[a-z0-9]{5}$/);
const hostNo = fc.integer({ min: 1, max: MAX_HOSTS });
const subnet = fc.integer({ min: SUBNETS.min, max: SUBNETS.max });

test('families have names and networks of their own: no name of one is ever taken for the other', () => {
  const [a, b] = Object.values(FAMILIES);
  assert.ok(a && b);
  assert.is.not(a.network, b.network);
  assert.ok(!a.prefix.startsWith(b.prefix) && !b.prefix.startsWith(a.prefix));
  fc.assert(
    fc.property(family, family, runId, hostNo, subnet, fc.nat(), (f, g, id, n, s, pid) => {
      const names = runNames(f, id, s, pid);
      for (const name of [names.bridge, names.netns(n), names.veth(n)]) {
        assert.is(runIdOfName(g, name), f === g ? id : null, name);
      }
      assert.equal(parseRunDir(g, names.dirName), f === g ? { pid, id } : null);
    }),
  );
});

test('link names fit Linux interface names; addresses stay in the family network and the /24; each host its own', () => {
  fc.assert(
    fc.property(family, runId, subnet, fc.uniqueArray(hostNo, { minLength: 2, maxLength: 20 }), (f, id, s, ns) => {
      const names = runNames(f, id, s, 1);
      assert.ok(names.bridge.length <= MAX_LINK_NAME);
      for (const n of ns) assert.ok(names.veth(n).length <= MAX_LINK_NAME, names.veth(n));
      const addrs = ns.map(names.address);
      assert.is(new Set(addrs).size, ns.length);
      for (const a of addrs) {
        const [ten, net, sub, last] = a.split('.').map(Number);
        assert.equal([ten, net, sub], [10, f.network, s]);
        assert.ok(last !== undefined && last > 1 && last < 255 && a !== names.gateway);
      }
    }),
  );
  assert.throws(() => runNames(FAMILIES.local, 'abcde', 10, 1).veth(MAX_HOSTS + 1), /outside/);
  assert.throws(() => runNames(FAMILIES.local, 'ABCDE', 10, 1), /run id/);
});

test('names that only look alike are not the family', () => {
  for (const n of ['nbf', 'nbfabcd', 'nbfabcdef', 'nbfabcdeh', 'nbfabcdeh0', 'nbfabcdex1', 'xnbfabcde', 'nbtabcde', 'docker0', 'nbfABCDE']) {
    assert.is(runIdOfName(FAMILIES.local, n), null, n);
  }
  for (const e of ['nebula-local-fleet-12-abcd', 'nebula-local-fleet-x-abcde', 'nebula-local-fleet-12-abcde.x', 'nebula-fleet-12-abcde']) {
    assert.is(parseRunDir(FAMILIES.local, e), null, e);
  }
});

test('a picked subnet is never one in use; none when all are', () => {
  fc.assert(
    fc.property(family, fc.uniqueArray(subnet, { maxLength: 240 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (f, used, r) => {
      const addrs = used.map((s) => `10.${f.network}.${s}.1`).concat(['127.0.0.1', `10.${f.network + 1}.50.1`]);
      const picked = pickSubnet(f, addrs, () => r);
      if (used.length === SUBNETS.max - SUBNETS.min + 1) assert.is(picked, null);
      else {
        assert.ok(picked !== null && picked >= SUBNETS.min && picked <= SUBNETS.max);
        assert.ok(!used.includes(picked));
      }
    }),
  );
});

test('run ids are 5 characters of [a-z0-9], whatever the random source', () => {
  fc.assert(fc.property(fc.double({ min: 0, max: 1, noNaN: true }), (r) => /^[a-z0-9]{5}$/.test(newRunId(() => r))));
});

test('parsing ip output, /proc/mounts and /proc/<pid>/stat', () => {
  assert.equal(parseIpAddrs('1: lo    inet 127.0.0.1/8 scope host lo\n9: nbfabcde    inet 10.232.40.1/24 brd 10.232.40.255 scope global'), [
    '127.0.0.1',
    '10.232.40.1',
  ]);
  assert.equal(parseNetnsList('nbfabcdeh2 (id: 4)\nnbfabcdeh1\n\n'), ['nbfabcdeh2', 'nbfabcdeh1']);
  assert.equal(
    parseLinkNames(
      '1: lo: <LOOPBACK,UP> mtu 65536\n12: nbfabcdev1@if2: <BROADCAST> mtu 1500 master nbfabcde\n13: nbfabcde: <BROADCAST> mtu 1500\n    link/ether 00:00',
    ),
    ['lo', 'nbfabcdev1', 'nbfabcde'],
  );
  const dir = '/tmp/nebula-local-fleet-1-abcde';
  const mounts = [
    `overlay ${dir}/fleet-1/data/overlay2/x/merged overlay rw 0 0`,
    `nsfs ${dir}/fleet-1/exec/netns/ab nsfs rw 0 0`,
    `tmpfs ${dir}x/other tmpfs rw 0 0`,
    'proc /proc proc rw 0 0',
    `tmpfs ${dir}/with\\040space tmpfs rw 0 0`,
  ].join('\n');
  assert.equal(mountsUnder(mounts, dir), [`${dir}/fleet-1/data/overlay2/x/merged`, `${dir}/fleet-1/exec/netns/ab`, `${dir}/with space`]);
  fc.assert(
    fc.property(fc.string(), fc.nat(), fc.nat(), (name, ppid, start) => {
      const text = `42 (${name}) S ${ppid} 1 1 0 -1 4194560 10 0 0 0 0 0 0 0 20 0 1 0 ${start} 1000 10 18446744073709551615\n`;
      assert.equal(parseStat(text), { ppid, state: 'S', start: String(start) });
    }),
  );
  assert.is(parseStat('garbage'), null);
});

test('descendants: every process below the roots, nothing else', () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat({ max: 30 }), { minLength: 1, maxLength: 30 }),
      fc.uniqueArray(fc.integer({ min: 1, max: 31 }), { maxLength: 4 }),
      (parents, roots) => {
        // pid i+1 has parent parents[i] (0: none): a forest.
        const table = new Map(parents.map((p, i) => [i + 1, p < i + 1 ? p : 0] as const));
        const got = withDescendants(roots, table);
        const below = (pid: number): boolean => {
          for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 0 && hops < 64; p = table.get(p), hops++) if (roots.includes(p)) return true;
          return false;
        };
        for (const pid of table.keys()) assert.is(got.has(pid), below(pid), `pid ${pid}`);
        for (const r of roots) assert.ok(got.has(r));
      },
    ),
  );
});

test.run();
