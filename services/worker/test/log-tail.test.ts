import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { demuxLog, tailBytes, tailLines } from '../src/runtime/log-tail.ts';

/** The end of a container's log: the engine's frames joined, cut to a byte limit without splitting a character. */

function frame(stream: 1 | 2, text: string): Buffer {
  const body = Buffer.from(text);
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

test('frames of stdout and stderr are joined in order; a raw log stays as it is', () => {
  const buf = Buffer.concat([frame(1, 'out 1\n'), frame(2, 'err 1\n'), frame(1, 'out 2\n')]);
  assert.equal(demuxLog(buf).toString(), 'out 1\nerr 1\nout 2\n');
  assert.equal(demuxLog(Buffer.from('plain text log\n')).toString(), 'plain text log\n');
  assert.equal(demuxLog(frame(1, 'cut short').subarray(0, 12)).toString(), 'cut ');
});

test('property: the tail is a suffix of the text, at most `bytes` long (in bytes and in code units)', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.integer({ min: 0, max: 300 }), (text, bytes) => {
      const out = tailBytes(Buffer.from(text), bytes);
      assert.ok(Buffer.byteLength(out) <= bytes);
      assert.ok(out.length <= bytes);
      assert.ok(text.endsWith(out));
      if (Buffer.byteLength(text) <= bytes) assert.equal(out, text);
    }),
  );
});

test('tailLines keeps the last lines', () => {
  assert.equal(tailLines('a\nb\nc\n', 2), 'b\nc\n');
  assert.equal(tailLines('a\nb\nc', 1), 'c');
  assert.equal(tailLines('a\n', 5), 'a\n');
});

test.run();
