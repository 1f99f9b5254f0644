import { appMessageSchema, heartbeatSchema, MESSAGE_VERSION, resultSchema, WAVE_MESSAGE_VERSION } from '@nebula/contracts';
import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { z } from 'zod';
import { decode, InvalidMessageError, NewerVersionError, newerVersion, understoodVersion } from '../src/index.ts';

/** decode tells a message of a newer schema version from a malformed one, in one place. */
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

test('every message schema understands MESSAGE_VERSION', () => {
  for (const s of [resultSchema, heartbeatSchema]) assert.is(understoodVersion(s), MESSAGE_VERSION);
  assert.is(understoodVersion(appMessageSchema), WAVE_MESSAGE_VERSION, 'app messages: versions 1 and 2');
  assert.is(understoodVersion(z.object({ x: z.string() })), null);
  assert.is(understoodVersion(z.object({ v: z.literal('1') })), null);
  assert.is(understoodVersion(z.string()), null);
});

test('newerVersion: an integer v above the understood one, and nothing else', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1000 }), fc.dictionary(fc.string(), fc.jsonValue()), (understood, v, rest) => {
      assert.is(newerVersion({ ...rest, v }, understood), v > understood ? v : null);
    }),
  );
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.double({ min: 1.01, max: 1e6, noInteger: true }), fc.array(fc.integer())), (v) =>
      assert.is(newerVersion({ v }, 1), null, `v = ${JSON.stringify(v)}`),
    ),
  );
  for (const raw of [null, 7, 'x', [{ v: 2 }], {}]) assert.is(newerVersion(raw, 1), null);
});

test('decode: a newer version is a NewerVersionError whatever its shape; the same shape at an unknown older or odd v is malformed', () => {
  fc.assert(
    fc.property(fc.integer({ min: MESSAGE_VERSION + 1, max: 1e6 }), fc.dictionary(fc.string(), fc.jsonValue()), (v, rest) => {
      try {
        decode(heartbeatSchema, bytes({ ...rest, v }), 'hosts.h1');
        assert.unreachable('decoded');
      } catch (e) {
        assert.instance(e, NewerVersionError);
        const err = e as NewerVersionError;
        assert.is(err.version, v);
        assert.is(err.understood, MESSAGE_VERSION);
        assert.ok(err instanceof InvalidMessageError, 'never processed, like an invalid one');
        assert.match(err.message, `schema version ${v}, newer than this reader understands (${MESSAGE_VERSION})`);
      }
    }),
  );
  for (const v of [0, -1, 1.5, '2', null]) {
    assert.throws(
      () => decode(heartbeatSchema, bytes({ v }), 'hosts.h1'),
      (e: Error) => e instanceof InvalidMessageError && !(e instanceof NewerVersionError) && /invalid/.test(e.message),
      `v = ${JSON.stringify(v)}`,
    );
  }
  assert.throws(
    () => decode(heartbeatSchema, bytes('[{"v":2}]'), 'hosts.h1'),
    (e: Error) => !(e instanceof NewerVersionError),
  );
});

test.run();
