import { type AppMessage, appConfigSchema, isLaterMessage, WAVE_MESSAGE_VERSION } from '@nebula/contracts';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { baseMessage, handlingOf, supersession } from '../src/wave-handling.ts';

/** What a wave message asks of one host: the pure decisions, property-tested. */
const HOSTS = ['h1', 'h2', 'h3', 'h4'];
const config = appConfigSchema.parse({ docker_image: 'img:1' });
const rev = fc.record({ incarnation: fc.integer({ min: 1, max: 2 }), revision: fc.integer({ min: 1, max: 4 }) });

const message: fc.Arbitrary<AppMessage> = fc
  .record({
    id: rev,
    wave: fc.option(
      fc.record({
        step: fc.integer({ min: 1, max: 3 }),
        hosts: fc.subarray(HOSTS),
        base: fc.option(fc.record({ incarnation: fc.constant(1), revision: fc.constant(1), rollout_id: fc.constant('r-base'), config: fc.constant(config) })),
      }),
      { nil: undefined },
    ),
  })
  .map(({ id, wave }) => ({
    v: wave ? WAVE_MESSAGE_VERSION : 1,
    app: 'web',
    ...id,
    action: 'restart' as const,
    config,
    rollout_id: `r-${id.incarnation}-${id.revision}`,
    created_at: new Date(0).toISOString(),
    ...(wave ? { wave } : {}),
  }));

test('a host applies the revision only when it is in the wave (or there is none), and never a revision it reported already', () => {
  fc.assert(
    fc.property(message, fc.constantFrom(...HOSTS), fc.option(rev), (m, host, done) => {
      const h = handlingOf(m, host, { reported: done, applied: done });
      const inWave = m.wave === undefined || m.wave.hosts.includes(host);
      const already = done !== null && done.incarnation === m.incarnation && done.revision === m.revision;
      if (h.kind === 'apply') {
        assert.ok(inWave && !already);
        assert.is(h.target, m);
      }
      if (h.kind === 'base') {
        assert.ok(!inWave);
        assert.equal([h.target.revision, h.target.action, h.target.wave], [m.wave?.base?.revision, 'update', undefined]);
      }
      if (h.kind === 'nothing') assert.ok((inWave && already) || (!inWave && m.wave?.base === null));
    }),
  );
});

test('a later wave of the same revision makes a message "later" (acked quietly), a newer revision "superseded"', () => {
  fc.assert(
    fc.property(message, fc.option(message), (m, newest) => {
      const s = supersession(m, newest, null);
      if (newest === null) return assert.is(s, null);
      const sameRevision = newest.incarnation === m.incarnation && newest.revision === m.revision;
      if (s === 'later') assert.ok(sameRevision && isLaterMessage(newest, m));
      if (s === 'superseded') assert.ok(!sameRevision);
      if (s === null) assert.not.ok(isLaterMessage(newest, m));
    }),
  );
});

test('the base as a message: its revision, config and rollout, as an update without wave', () => {
  const m: AppMessage = {
    v: 2,
    app: 'web',
    incarnation: 1,
    revision: 5,
    action: 'roll',
    config,
    rollout_id: 'r5',
    created_at: new Date(0).toISOString(),
    wave: { step: 1, hosts: ['h1'], base: { incarnation: 1, revision: 4, rollout_id: 'r4', config } },
  };
  const b = baseMessage(m, m.wave!.base!);
  assert.equal([b.revision, b.rollout_id, b.action, b.wave], [4, 'r4', 'update', undefined]);
});

test.run();
