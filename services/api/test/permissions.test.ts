import { appConfigSchema } from '@nebula/contracts';
import fc from 'fast-check';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ADMIN_PERMISSIONS, allows, HIDDEN_VALUE, mergeGroups, NO_PERMISSIONS, privilegedFields, redactEnv } from '../src/access/permissions.ts';

/** The pure decisions of who may do what (access/permissions.ts). */
const test = suite('permissions');

const names = fc.constantFrom('web', 'db', 'cache', 'jobs');
const level = fc.constantFrom('ro' as const, 'rw' as const);
const levels = fc.dictionary(names, level, { maxKeys: 4 });
const group = fc.record({
  admin: fc.boolean(),
  pruning_allowed: fc.boolean(),
  privileged_allowed: fc.boolean(),
  apps: levels,
  device_groups: levels,
  cron_jobs: levels,
});
const kinds = fc.constantFrom('apps' as const, 'device_groups' as const, 'cron_jobs' as const);

test('no group: nothing allowed; the admin: everything', () => {
  fc.assert(
    fc.property(kinds, names, level, (kind, name, l) => {
      assert.is(allows(mergeGroups([]), kind, name, l), false);
      assert.is(allows(ADMIN_PERMISSIONS, kind, name, l), true);
    }),
  );
  assert.equal(mergeGroups([]), NO_PERMISSIONS);
});

test('"rw" includes "ro"; "ro" never allows a change', () => {
  fc.assert(
    fc.property(fc.array(group, { maxLength: 4 }), kinds, names, (groups, kind, name) => {
      const p = mergeGroups(groups.map((g) => ({ ...g, admin: false })));
      if (allows(p, kind, name, 'rw')) assert.ok(allows(p, kind, name, 'ro'));
      const given = groups.map((g) => g[kind][name]);
      assert.is(allows(p, kind, name, 'rw'), given.includes('rw'));
      assert.is(allows(p, kind, name, 'ro'), given.length > 0 && given.some((x) => x !== undefined));
    }),
  );
});

test('a member has the union of its groups: order does not matter, one more group never takes a right away', () => {
  fc.assert(
    fc.property(fc.array(group, { maxLength: 4 }), group, kinds, names, level, (groups, extra, kind, name, l) => {
      const p = mergeGroups(groups);
      assert.equal(mergeGroups([...groups].reverse()), p);
      const more = mergeGroups([...groups, extra]);
      if (allows(p, kind, name, l)) assert.ok(allows(more, kind, name, l));
      if (p.privileged_allowed) assert.ok(more.privileged_allowed);
      if (p.pruning_allowed) assert.ok(more.pruning_allowed);
    }),
  );
});

test('a name like a prototype key gives nothing unless granted', () => {
  for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
    assert.is(allows(mergeGroups([{ ...NO_PERMISSIONS, apps: { web: 'rw' } }]), 'apps', name, 'ro'), false);
  }
});

const base = appConfigSchema.parse({ docker_image: 'nginx:1' });

test('privileged fields: each of privileged, devices, the host network and a bind mount, and nothing else', () => {
  assert.equal(privilegedFields(base), []);
  assert.equal(privilegedFields({ ...base, privileged: true }), ['privileged']);
  assert.equal(privilegedFields({ ...base, devices: ['/dev/ttyUSB0'] }), ['devices']);
  assert.equal(privilegedFields({ ...base, networks: ['host'] }), ['networks']);
  assert.equal(privilegedFields({ ...base, volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }), ['volumes']);
  assert.equal(privilegedFields({ ...base, volumes: ['data:/data', 'logs:/var/log:ro'] }), [], 'named volumes are not bind mounts');
  assert.equal(privilegedFields({ ...base, networks: ['nebula', 'bridge'] }), []);
  assert.equal(privilegedFields({ ...base, privileged: true, devices: ['/dev/sda'], networks: ['host'], volumes: ['/:/host'] }), [
    'devices',
    'networks',
    'privileged',
    'volumes',
  ]);
});

test('redacted env: the same names, no value', () => {
  fc.assert(
    fc.property(fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), fc.string()), (env) => {
      const r = redactEnv({ ...base, env_vars: env });
      assert.equal(Object.keys(r.env_vars).sort(), Object.keys(env).sort());
      for (const v of Object.values(r.env_vars)) assert.is(v, HIDDEN_VALUE);
      assert.is(r.docker_image, base.docker_image);
    }),
  );
});

test.run();
