import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** The API did not answer within the deadline. */
export class PostTimeoutError extends Error {
  override name = 'TimeoutError';
}

export interface PostAnswer {
  status: number;
  text: string;
  /** Of a redirect. */
  location: string | undefined;
}

/** An answer larger than this is cut off as an error: a credential is a few KB. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * POST a JSON body; resolves to the status and the answer's text. node:http rather than fetch: the
 * worker calls its control plane a few times a day, and fetch (undici, with its WebAssembly HTTP
 * parser) stays resident once loaded, ~15 MB of a worker that idles in about 80. No redirect is
 * followed (a 3xx is an answer like any other). `timeoutMs` bounds the whole call, answer included.
 */
export function postJson(url: string, body: unknown, timeoutMs: number): Promise<PostAnswer> {
  const target = new URL(url);
  const request = target.protocol === 'https:' ? httpsRequest : target.protocol === 'http:' ? httpRequest : null;
  if (request === null) return Promise.reject(new Error(`${url}: only http:// and https:// URLs are supported`));
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': payload.length },
    });
    const timer = setTimeout(() => req.destroy(new PostTimeoutError(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    req.on('error', fail);
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), location: res.headers.location });
      });
    });
    req.end(payload);
  });
}
