import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../src/errors.ts';
import {
  type AccessMap,
  type GroupDoc,
  groupCreateInput,
  groupPatch,
  LEVELS,
  NAME,
  needsCurrent,
  parseAccessPair,
  parseGroupFlags,
} from '../src/group-flags.ts';

/** The flags of `nebula groups create|update`, without an API: `name=ro|rw` pairs and the read-modify-write of an update. */
const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,10}$/);
const level = fc.constantFrom(...LEVELS);
const accessMap = fc.dictionary(name, level, { maxKeys: 6 }) as fc.Arbitrary<AccessMap>;
const group: fc.Arbitrary<GroupDoc> = fc.record({
  group_members: fc.uniqueArray(name, { maxLength: 6 }),
  apps: accessMap,
  device_groups: accessMap,
  cron_jobs: accessMap,
  admin: fc.boolean(),
  pruning_allowed: fc.boolean(),
  privileged_allowed: fc.boolean(),
});

function usage(fn: () => unknown, msg: RegExp) {
  try {
    fn();
  } catch (err) {
    assert.instance(err, UsageError);
    assert.match((err as Error).message, msg);
    return;
  }
  assert.unreachable(`no UsageError (${msg})`);
}

test('name=ro|rw: accepted pairs and clear refusals', () => {
  assert.equal(parseAccessPair('web=rw', 'app'), ['web', 'rw']);
  assert.equal(parseAccessPair('db_1=ro', 'device-group'), ['db_1', 'ro']);
  usage(() => parseAccessPair('web=rx', 'app'), /^--app web=rx: the access must be ro or rw \(got "rx"\)$/);
  usage(() => parseAccessPair('web', 'app'), /^--app takes <name>=ro or <name>=rw \(got "web"\)$/);
  usage(() => parseAccessPair('web=', 'app'), /must be ro or rw/);
  usage(() => parseAccessPair('=rw', 'app'), /"" is not a valid app name/);
  usage(() => parseAccessPair('a b=rw', 'cron-job'), /--cron-job: "a b" is not a valid cron job name/);
  usage(() => parseAccessPair('web=RW', 'app'), /must be ro or rw/);
});

test('property: a pair parses back to its name and level; anything else is a UsageError', () => {
  fc.assert(fc.property(name, level, (n, l) => JSON.stringify(parseAccessPair(`${n}=${l}`, 'app')) === JSON.stringify([n, l])));
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.tuple(name, fc.string()).map(([n, s]) => `${n}=${s}`),
      ),
      (s) => {
        try {
          const [n, l] = parseAccessPair(s, 'app');
          return `${n}=${l}` === s && NAME.test(n) && (LEVELS as readonly string[]).includes(l);
        } catch (err) {
          return err instanceof UsageError;
        }
      },
    ),
  );
});

test('create: only the fields given; conflicting flags refused', () => {
  const f = parseGroupFlags({ member: ['a', 'b', 'a'], app: ['web=rw', 'db=ro', 'web=rw'], admin: true }, 'create');
  assert.equal(groupCreateInput(f), { group_members: ['a', 'b'], apps: { web: 'rw', db: 'ro' }, admin: true });
  assert.equal(groupCreateInput(parseGroupFlags({}, 'create')), {});
  usage(() => parseGroupFlags({ app: ['web=ro', 'web=rw'] }, 'create'), /--app web is given both ro and rw/);
  usage(() => parseGroupFlags({ member: ['ok', 'not ok'] }, 'create'), /--member: "not ok" is not a valid user name/);
  usage(() => parseGroupFlags({ member: ['a'], 'add-member': ['b'] }, 'update'), /--member gives the whole member list/);
  usage(() => parseGroupFlags({ 'add-member': ['a'], 'remove-member': ['a'] }, 'update'), /"a" is given to both --add-member and --remove-member/);
  usage(() => parseGroupFlags({ app: ['web=rw'], 'app-remove': ['web'] }, 'update'), /"web" is given to both --app and --app-remove/);
  usage(() => parseGroupFlags({ 'pruning-allowed': true, 'no-pruning-allowed': true }, 'update'), /contradict/);
  usage(() => parseGroupFlags({}, 'update'), /needs something to change/);
});

test('update without a read: --member replaces the list, switches set both ways', () => {
  const f = parseGroupFlags({ member: ['x'], 'no-admin': true, 'privileged-allowed': true }, 'update');
  assert.not.ok(needsCurrent(f));
  assert.equal(groupPatch(f, null), { patch: { group_members: ['x'], admin: false, privileged_allowed: true }, notes: [] });
  assert.throws(() => groupPatch(parseGroupFlags({ 'add-member': ['y'] }, 'update'), null), /internal/);
});

test('property: update merges into the group as read (members added and removed, map entries set and removed, the rest kept)', () => {
  fc.assert(
    fc.property(
      group,
      fc.uniqueArray(name, { maxLength: 4 }),
      fc.uniqueArray(name, { maxLength: 4 }),
      accessMap,
      fc.uniqueArray(name, { maxLength: 4 }),
      (current, add, removeAll, set, appRemoveAll) => {
        const remove = removeAll.filter((m) => !add.includes(m));
        const appRemove = appRemoveAll.filter((a) => set[a] === undefined);
        const f = parseGroupFlags(
          {
            ...(add.length > 0 ? { 'add-member': add } : {}),
            ...(remove.length > 0 ? { 'remove-member': remove } : {}),
            ...(Object.keys(set).length > 0 ? { app: Object.entries(set).map(([n, l]) => `${n}=${l}`) } : {}),
            ...(appRemove.length > 0 ? { 'app-remove': appRemove } : {}),
            'pruning-allowed': true,
          },
          'update',
        );
        const { patch, notes } = groupPatch(f, current);
        if (add.length > 0 || remove.length > 0) {
          const members = patch.group_members ?? [];
          assert.equal(new Set(members).size, members.length, 'no member twice');
          for (const m of add) assert.ok(members.includes(m), `${m} added`);
          for (const m of remove) assert.not.ok(members.includes(m), `${m} removed`);
          const kept = current.group_members.filter((m) => !remove.includes(m));
          assert.equal(members.slice(0, kept.length), kept, 'the others kept, in their order');
        } else assert.is(patch.group_members, undefined, 'members not sent');
        if (Object.keys(set).length > 0 || appRemove.length > 0) {
          const apps = patch.apps ?? {};
          for (const [n, l] of Object.entries(set)) assert.is(apps[n], l);
          for (const n of appRemove) assert.is(apps[n], undefined);
          for (const [n, l] of Object.entries(current.apps)) if (set[n] === undefined && !appRemove.includes(n)) assert.is(apps[n], l, `${n} kept`);
          assert.is(Object.keys(apps).length, new Set([...Object.keys(current.apps), ...Object.keys(set)].filter((n) => !appRemove.includes(n))).size);
        } else assert.is(patch.apps, undefined, 'apps not sent');
        assert.is(patch.device_groups, undefined);
        assert.is(patch.cron_jobs, undefined);
        assert.is(patch.pruning_allowed, true);
        assert.is(patch.admin, undefined);
        // A note for each request that changes nothing, and only then.
        const expected =
          add.filter((m) => current.group_members.includes(m)).length +
          remove.filter((m) => !current.group_members.includes(m)).length +
          appRemove.filter((a) => current.apps[a] === undefined).length;
        assert.is(notes.length, expected);
      },
    ),
  );
});

test.run();
