/**
 * Whether a request may change anything, decided from its method and headers alone (pure).
 *
 * A browser that holds the API's Basic credentials (cached after a login prompt) sends them with
 * any request a page of another site makes it send: a form post or a `fetch` with a "simple" content
 * type (text/plain, form-urlencoded, multipart) needs no CORS preflight. So a change is only taken
 * when it can only have come from a non-browser client or from the API's own origin:
 *
 *   GET, HEAD, OPTIONS                     pass (they change nothing; tRPC queries, the watch stream)
 *   Origin present, not ours, not allowed  403  (`Origin: null`, sent by sandboxed or file pages, is never ours)
 *   Sec-Fetch-Site not same-origin/none    403  (same-site is refused too: a sibling subdomain is another app);
 *                                               waived for an Origin in the allow list (it is same-site by nature)
 *   Content-Type not application/json      415  (parameters such as `; charset=utf-8` allowed, any case)
 *
 * The content-type rule holds for every change, also one without a body (`POST .../stop`, DELETE):
 * a cross-site `fetch` with no body is possible too, and requiring the header always is simpler
 * than deciding when a body is "there". Sending `application/json` forces a browser to preflight,
 * which the API never answers with CORS headers, so a page of another site cannot send it.
 * A missing Origin and Sec-Fetch-Site pass: curl, SDKs and our own clients send neither.
 * Duplicated headers (joined with ", " by Node) match nothing and are refused.
 */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

export type IncomingHeaders = Readonly<Record<string, string | string[] | undefined>>;

export interface CrossSiteRequest {
  method: string;
  /** As Node gives them: lower-case names. */
  headers: IncomingHeaders;
  /** How the API is served: the request's own origin is `<scheme>://<Host header>`. */
  scheme: 'http' | 'https';
  /** Other origins whose pages may call the API (API_ALLOWED_ORIGINS, normalised by parseOrigin). */
  allowedOrigins: ReadonlySet<string>;
}

export interface CrossSiteRefusal {
  status: 403 | 415;
  body: { error: string; message: string };
}

export const UNSUPPORTED_MEDIA_TYPE: CrossSiteRefusal = {
  status: 415,
  body: { error: 'unsupported media type', message: 'changes require Content-Type: application/json' },
};

function refused(message: string): CrossSiteRefusal {
  return { status: 403, body: { error: 'cross-site request refused', message } };
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * `scheme://host[:port]` of an http(s) URL, normalised as browsers serialise an Origin (lower-case
 * host, no default port), or null for anything else (`null`, a path, credentials, other schemes).
 */
export function parseOrigin(text: string): string | null {
  if (!URL.canParse(text)) return null;
  const u = new URL(text);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  // Nothing but scheme, host and port (a trailing slash tolerated): no user, path, query or fragment.
  return u.href === `${u.origin}/` ? u.origin : null;
}

/** The request's own origin: the scheme it came in on and its Host header (null when Host is missing or not a host). */
export function ownOrigin(scheme: 'http' | 'https', host: string | undefined): string | null {
  if (host === undefined || host === '' || /[/?#@\s\\]/.test(host)) return null;
  return parseOrigin(`${scheme}://${host}`);
}

export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  return value.split(';', 1)[0]?.trim().toLowerCase() === 'application/json';
}

/** null: the request may go on; otherwise the answer to give, before its body is read. */
export function crossSiteRefusal(req: CrossSiteRequest): CrossSiteRefusal | null {
  const method = req.method.toUpperCase();
  if (SAFE_METHODS.has(method)) return null;

  const originHeader = single(req.headers.origin);
  let allowedOther = false;
  if (originHeader !== undefined) {
    const origin = parseOrigin(originHeader.trim());
    const own = ownOrigin(req.scheme, single(req.headers.host));
    allowedOther = origin !== null && req.allowedOrigins.has(origin);
    if (!allowedOther && (origin === null || origin !== own)) {
      return refused("the Origin of this request is not the API's own (changes from other sites are refused; see API_ALLOWED_ORIGINS)");
    }
  }

  const site = single(req.headers['sec-fetch-site']);
  if (site !== undefined && !allowedOther) {
    const s = site.trim().toLowerCase();
    if (s !== 'same-origin' && s !== 'none') {
      const seen = s === 'same-site' || s === 'cross-site' ? s : 'not same-origin';
      return refused(`the browser says a page of another site sent this request (Sec-Fetch-Site: ${seen})`);
    }
  }

  if (!isJsonContentType(single(req.headers['content-type']))) return UNSUPPORTED_MEDIA_TYPE;
  return null;
}
