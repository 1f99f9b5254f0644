import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from './body.ts';
import { sendJson } from './respond.ts';

/**
 * The body stage: reads the whole body once, up to `maxBody` bytes. Over the limit the client gets
 * 413 JSON (and, far over it, the connection is dropped after the answer); the caller gets null.
 */
export async function readGuardedBody(req: IncomingMessage, res: ServerResponse, maxBody: number): Promise<string | null> {
  const body = await readBody(req, maxBody);
  if (body.kind === 'ok') return body.raw;
  const headers: Record<string, string> = body.kind === 'abusive' ? { connection: 'close' } : {};
  sendJson(res, 413, { error: 'payload too large', limit_bytes: maxBody }, headers);
  if (body.kind === 'abusive') res.once('finish', () => req.destroy());
  return null;
}
