/**
 * The REST API over plain HTTP, as curl or the original's Python SDK would call it: no client
 * library, basic auth, JSON bodies. Requests go round robin to the running API replicas unless one
 * is named.
 */
export interface RestResponse {
  status: number;
  headers: Headers;
  /** The parsed body; undefined when it is not JSON. */
  body: unknown;
  text: string;
  /** The answer said `application/json` and parsed as JSON. */
  json: boolean;
}

export interface RestRequest {
  /** An object is sent as JSON; a string as is. */
  body?: unknown;
  /** Index of the replica to ask. */
  api?: number;
  headers?: Record<string, string>;
  /** `null`: no credentials. */
  auth?: 'basic' | 'bearer' | null;
  timeoutMs?: number;
}

export class RestClient {
  private readonly replicas: () => Array<{ url: string; up: boolean }>;
  private readonly auth: { user: string; password: string; token: string };
  private next = 0;

  constructor(replicas: () => Array<{ url: string; up: boolean }>, auth: { user: string; password: string; token: string }) {
    this.replicas = replicas;
    this.auth = auth;
  }

  private pick(): string {
    const all = this.replicas();
    for (let i = 0; i < all.length; i++) {
      const k = (this.next + i) % all.length;
      const replica = all[k];
      if (replica?.up) {
        this.next = k + 1;
        return replica.url;
      }
    }
    // None up: the first one.
    const [first] = all;
    if (!first) throw new Error('no API replicas');
    return first.url;
  }

  private replica(i: number): { url: string; up: boolean } {
    const replica = this.replicas()[i];
    if (!replica) throw new Error(`no API replica ${i}`);
    return replica;
  }

  async call(method: string, path: string, req: RestRequest = {}): Promise<RestResponse> {
    const base = req.api !== undefined ? this.replica(req.api).url : this.pick();
    const headers: Record<string, string> = { ...req.headers };
    if (req.auth !== null) {
      headers.authorization =
        req.auth === 'bearer' ? `Bearer ${this.auth.token}` : `Basic ${Buffer.from(`${this.auth.user}:${this.auth.password}`).toString('base64')}`;
    }
    let body: string | undefined;
    if (req.body !== undefined) body = typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
    // Every change is JSON, with a body or not (the API refuses others), as the original's SDK sends it.
    if (!['GET', 'HEAD', 'OPTIONS'].includes(method)) headers['content-type'] ??= 'application/json';
    const res = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(req.timeoutMs ?? 15_000) });
    const text = await res.text();
    let parsed: unknown;
    let json = false;
    if ((res.headers.get('content-type') ?? '').startsWith('application/json')) {
      try {
        parsed = JSON.parse(text);
        json = true;
      } catch {
        /* not JSON after all */
      }
    }
    return { status: res.status, headers: res.headers, body: parsed, text, json };
  }

  /** A call that must succeed with `status`: throws with the answer otherwise. */
  async expect<T = Record<string, unknown>>(status: number, method: string, path: string, req: RestRequest = {}): Promise<T> {
    const r = await this.call(method, path, req);
    if (r.status !== status || !r.json) throw new Error(`${method} ${path}: want ${status}, got ${r.status}: ${r.text.slice(0, 500)}`);
    return r.body as T;
  }
}
