import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Io } from '../src/context.ts';
import { InputError } from '../src/errors.ts';
import { typeKeys } from '../src/hidden-prompt.ts';
import { readSecret, secretFromText } from '../src/secret-input.ts';

/** A user's secret from standard input or typed without echo: the one line, its refusals (which never quote it), the keys. */
const oneLine = fc.string({ minLength: 1 }).filter((s) => !/[\r\n]/.test(s));

test('standard input: one line, its line break dropped; empty or several lines refused without quoting it', () => {
  assert.is(secretFromText('s3cret-password\n', 'password'), 's3cret-password');
  assert.is(secretFromText('s3cret-password\r\n', 'password'), 's3cret-password');
  assert.is(secretFromText('  spaces kept  ', 'password'), '  spaces kept  ');
  for (const [text, msg] of [
    ['', /no password on standard input/],
    ['\n', /no password on standard input/],
    ['first-line-secret\nsecond-line-secret\n', /must be one line/],
  ] as const) {
    try {
      secretFromText(text, 'password');
      assert.unreachable(JSON.stringify(text));
    } catch (err) {
      assert.instance(err, InputError);
      assert.match((err as Error).message, msg);
      assert.not.match((err as Error).message, /secret/);
    }
  }
  fc.assert(fc.property(oneLine, (s) => secretFromText(`${s}\n`, 'token') === s && secretFromText(s, 'token') === s));
});

test('a terminal: asked twice; two different answers refused', async () => {
  const io = (answers: string[]): Io => ({
    out: { write: () => true },
    err: { write: () => true },
    env: {},
    isTTY: true,
    stdinIsTTY: true,
    readStdin: () => assert.unreachable('stdin is not read at a terminal') as never,
    promptSecret: async () => answers.shift() ?? '',
  });
  assert.is(await readSecret(io(['typed-password', 'typed-password']), 'password'), 'typed-password');
  try {
    await readSecret(io(['typed-password', 'typo-password']), 'password');
    assert.unreachable();
  } catch (err) {
    assert.instance(err, InputError);
    assert.match((err as Error).message, /the two passwords typed differ/);
  }
});

test('keys at the hidden prompt: backspace, Ctrl-U, arrows ignored, Enter ends, Ctrl-C cancels', () => {
  assert.equal(typeKeys('', 'abc\u007fd\r'), { line: 'abd', end: 'enter' });
  assert.equal(typeKeys('ab', 'c'), { line: 'abc' });
  assert.equal(typeKeys('abc', '\u0015xy\n'), { line: 'xy', end: 'enter' });
  assert.equal(typeKeys('ab', '\u001b[D\u001b[Ac\r'), { line: 'abc', end: 'enter' });
  assert.equal(typeKeys('abc', '\u0003'), { line: '', end: 'cancel' });
  assert.equal(typeKeys('', '\u0004'), { line: '', end: 'cancel' });
  assert.equal(typeKeys('é😀', '\u007f\r'), { line: 'é', end: 'enter' });
  const printable = fc.string({ unit: 'grapheme' }).filter((s) => !/[\p{Cc}]/u.test(s));
  fc.assert(fc.property(printable, (s) => JSON.stringify(typeKeys('', `${s}\r`)) === JSON.stringify({ line: s, end: 'enter' })));
});

test.run();
