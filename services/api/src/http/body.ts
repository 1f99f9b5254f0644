import type { IncomingMessage } from 'node:http';

export type BodyResult =
  | { kind: 'ok'; raw: string }
  | { kind: 'too-large' }
  /** Far over the limit: not worth reading to the end; the connection is dropped after the answer. */
  | { kind: 'abusive' };

/**
 * Reads the whole request body up to `limit` bytes. A body over the limit is still read to its end
 * (and thrown away) so the client gets its 413 instead of a reset connection, unless it goes on past
 * `hardLimit`.
 */
export function readBody(req: IncomingMessage, limit: number, hardLimit = Math.max(limit * 16, 16 * 1024 * 1024)): Promise<BodyResult> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > hardLimit) return Promise.resolve({ kind: 'abusive' });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (r: BodyResult) => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > hardLimit) {
        req.pause();
        finish({ kind: 'abusive' });
      } else if (size <= limit) chunks.push(chunk);
    });
    req.on('end', () => finish(size > limit ? { kind: 'too-large' } : { kind: 'ok', raw: Buffer.concat(chunks).toString('utf8') }));
    req.on('error', (err) => {
      if (!settled) {
        settled = true;
        reject(err);
      }
    });
  });
}

export type JsonBody = { kind: 'empty' } | { kind: 'json'; value: unknown } | { kind: 'malformed'; reason: string };

export function parseJson(raw: string): JsonBody {
  if (raw.trim() === '') return { kind: 'empty' };
  try {
    return { kind: 'json', value: JSON.parse(raw) as unknown };
  } catch {
    return { kind: 'malformed', reason: 'request body is not valid JSON' };
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
