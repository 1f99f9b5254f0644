/**
 * Reading the end of a container's log, pure (log-tail.test.ts).
 *
 * The engine sends a container without a TTY (all of ours) as frames: an 8-byte header (stream
 * 1 = stdout, 2 = stderr, three zero bytes, a big-endian length) then that many bytes. Joining the
 * payloads in order keeps stdout and stderr interleaved as the process wrote them.
 */

/** Whether `buf` starts like a multiplexed log (a TTY container's log is raw text). */
function looksFramed(buf: Uint8Array): boolean {
  return buf.length >= 8 && buf[0] !== undefined && buf[0] <= 2 && buf[1] === 0 && buf[2] === 0 && buf[3] === 0;
}

/** The payloads of a multiplexed log, joined; raw text as it is. A frame cut short keeps what arrived. */
export function demuxLog(buf: Buffer): Buffer {
  if (!looksFramed(buf)) return buf;
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= buf.length) {
    const size = buf.readUInt32BE(at + 4);
    parts.push(buf.subarray(at + 8, Math.min(buf.length, at + 8 + size)));
    at += 8 + size;
  }
  return Buffer.concat(parts);
}

/**
 * The last `bytes` bytes of UTF-8 text as a string, never starting inside a character (the bytes
 * of a character cut at the start are dropped), so its length in code units is at most `bytes`.
 */
export function tailBytes(buf: Buffer, bytes: number | undefined): string {
  if (bytes === undefined || buf.length <= bytes) return buf.toString('utf8');
  let start = buf.length - Math.max(0, bytes);
  // Continuation bytes are 10xxxxxx: skip to the next character's first byte.
  while (start < buf.length && ((buf[start] ?? 0) & 0xc0) === 0x80) start += 1;
  return buf.subarray(start).toString('utf8');
}

/** The last `lines` lines of text (a final newline does not count as an empty line). */
export function tailLines(text: string, lines: number | undefined): string {
  if (lines === undefined) return text;
  if (lines <= 0) return '';
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  const all = body.split('\n');
  if (all.length <= lines) return text;
  return `${all.slice(-lines).join('\n')}${text.endsWith('\n') ? '\n' : ''}`;
}
