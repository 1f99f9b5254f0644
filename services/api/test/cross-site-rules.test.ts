import fc from 'fast-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { apiEnvSchema } from '../src/config.ts';
import { type CrossSiteRequest, crossSiteRefusal, isJsonContentType, ownOrigin, parseOrigin } from '../src/http/cross-site.ts';

/** The cross-site rules (http/cross-site.ts) as a pure function: examples, then properties. */

const NONE: ReadonlySet<string> = new Set();
const base = (over: Partial<CrossSiteRequest> & { headers?: CrossSiteRequest['headers'] } = {}): CrossSiteRequest => ({
  method: 'POST',
  scheme: 'http',
  allowedOrigins: NONE,
  ...over,
  headers: { host: 'api.example.com:8080', 'content-type': 'application/json', ...over.headers },
});
const status = (r: CrossSiteRequest) => crossSiteRefusal(r)?.status ?? 'pass';

test('examples: what a browser can be made to send is refused, what our clients send passes', () => {
  assert.is(status(base()), 'pass', 'curl / SDK / CLI: JSON, no Origin');
  assert.is(status(base({ headers: { 'content-type': 'Application/JSON; charset=UTF-8' } })), 'pass');
  assert.is(status(base({ headers: { 'content-type': 'application/json;charset=utf-8' } })), 'pass');
  for (const type of [
    'text/plain',
    'text/plain;charset=UTF-8',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/jsonp',
    'application/json-seq',
    '',
  ]) {
    assert.is(status(base({ headers: { 'content-type': type } })), 415, type);
  }
  assert.is(status(base({ headers: { 'content-type': undefined } })), 415, 'no content type (bodyless POST too)');
  assert.is(status(base({ method: 'DELETE', headers: { 'content-type': undefined } })), 415, 'DELETE without one');
  assert.equal(crossSiteRefusal(base({ headers: { 'content-type': 'text/plain' } }))?.body, {
    error: 'unsupported media type',
    message: 'changes require Content-Type: application/json',
  });

  assert.is(status(base({ headers: { origin: 'https://evil.example' } })), 403);
  assert.is(status(base({ headers: { origin: 'null' } })), 403, 'Origin: null is cross-site');
  assert.is(status(base({ headers: { origin: 'http://api.example.com:8080' } })), 'pass', 'own origin');
  assert.is(status(base({ headers: { origin: 'HTTP://API.example.com:8080' } })), 'pass', 'case of scheme and host');
  assert.is(status(base({ headers: { origin: 'https://api.example.com:8080' } })), 403, 'other scheme');
  assert.is(status(base({ headers: { origin: 'http://api.example.com:8081' } })), 403, 'other port');
  assert.is(status(base({ headers: { origin: 'http://api.example.com:8080', host: undefined } })), 403, 'no Host: no own origin');
  assert.is(status(base({ scheme: 'https', headers: { host: 'api.example.com', origin: 'https://api.example.com' } })), 'pass', 'https, default port');
  assert.is(status(base({ scheme: 'https', headers: { host: 'api.example.com:443', origin: 'https://api.example.com' } })), 'pass');
  assert.is(status(base({ headers: { origin: ['http://api.example.com:8080', 'https://evil.example'] } })), 403, 'two Origins');
  assert.is(status(base({ headers: { origin: 'http://api.example.com:8080/x' } })), 403, 'not an origin');

  const allowed = new Set(['https://console.example.com']);
  assert.is(status(base({ allowedOrigins: allowed, headers: { origin: 'https://console.example.com' } })), 'pass', 'allow list');
  assert.is(
    status(base({ allowedOrigins: allowed, headers: { origin: 'https://console.example.com', 'sec-fetch-site': 'same-site' } })),
    'pass',
    'an allowed origin is same-site by nature',
  );
  assert.is(status(base({ allowedOrigins: allowed, headers: { origin: 'https://console.example.com', 'content-type': 'text/plain' } })), 415);

  assert.is(status(base({ headers: { 'sec-fetch-site': 'cross-site' } })), 403);
  assert.is(status(base({ headers: { 'sec-fetch-site': 'same-site' } })), 403);
  assert.is(status(base({ headers: { 'sec-fetch-site': 'same-origin' } })), 'pass');
  assert.is(status(base({ headers: { 'sec-fetch-site': 'none' } })), 'pass');
  assert.is(status(base({ headers: { 'sec-fetch-site': 'whatever' } })), 403, 'unknown values fail closed');
  assert.is(status(base({ headers: { origin: 'http://api.example.com:8080', 'sec-fetch-site': 'cross-site' } })), 403, 'contradiction: refused');
  assert.equal(crossSiteRefusal(base({ headers: { origin: 'https://evil.example' } }))?.body.error, 'cross-site request refused');
  assert.is(status(base({ headers: { origin: 'https://evil.example', 'content-type': 'text/plain' } })), 403, '403 before 415');

  for (const method of ['GET', 'HEAD', 'OPTIONS', 'get']) {
    assert.is(
      status(base({ method, headers: { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' } })),
      'pass',
      method,
    );
  }
});

test('parseOrigin and ownOrigin', () => {
  assert.is(parseOrigin('https://Console.Example.com'), 'https://console.example.com');
  assert.is(parseOrigin('https://console.example.com/'), 'https://console.example.com');
  assert.is(parseOrigin('https://console.example.com:443'), 'https://console.example.com');
  assert.is(parseOrigin('http://[::1]:8080'), 'http://[::1]:8080');
  for (const bad of [
    'null',
    '',
    'console.example.com',
    'https://console.example.com/app',
    'https://u:p@console.example.com',
    'https://x.com?a',
    'https://x.com#f',
    'ftp://x.com',
    'file:///etc',
    'javascript:alert(1)',
  ]) {
    assert.is(parseOrigin(bad), null, bad);
  }
  assert.is(ownOrigin('https', 'api.example.com:8443'), 'https://api.example.com:8443');
  for (const host of [undefined, '', 'a.com/x', 'evil.com@a.com', 'a.com b', 'a.com:99999']) assert.is(ownOrigin('http', host), null, String(host));
  assert.ok(isJsonContentType(' application/json '));
  assert.not.ok(isJsonContentType(undefined));
});

test('API_ALLOWED_ORIGINS: a comma-separated list of origins, normalised; anything else is a config error', () => {
  const parse = (v: string | undefined) => apiEnvSchema.shape.API_ALLOWED_ORIGINS.safeParse(v);
  assert.equal(parse(undefined).data, []);
  assert.equal(parse(' https://Console.Example.com/ , http://localhost:3000,').data, ['https://console.example.com', 'http://localhost:3000']);
  for (const bad of ['https://console.example.com/app', 'null', 'console.example.com', 'https://a.com,*']) {
    const r = parse(bad);
    assert.not.ok(r.success, bad);
    assert.match(r.error?.issues[0]?.message ?? '', /is not an origin: scheme:\/\/host\[:port\]/);
  }
});

// ---- properties --------------------------------------------------------------------------------

const unsafeMethod = fc.constantFrom('POST', 'PUT', 'PATCH', 'DELETE', 'post', 'PROPFIND');
const safeMethod = fc.constantFrom('GET', 'HEAD', 'OPTIONS', 'get', 'head');
const hostName = fc.constantFrom('api.example.com', '127.0.0.1', 'localhost', '[::1]', 'nebula.internal');
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
const hostHeader = fc.tuple(hostName, port).map(([h, p]) => (p === undefined ? h : `${h}:${p}`));
const scheme = fc.constantFrom('http' as const, 'https' as const);
const anyText = fc.string({ maxLength: 40 });
const nonJsonType = fc.oneof(
  fc.constantFrom(
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=--x',
    'application/xml',
    'text/json',
    'application/json5',
    '',
  ),
  anyText.filter((t) => !isJsonContentType(t)),
);
const jsonType = fc
  .tuple(fc.constantFrom('application/json', 'APPLICATION/JSON', 'Application/Json'), fc.constantFrom('', '; charset=utf-8', ';charset=UTF-8', ' ; q=1'))
  .map(([t, p]) => t + p);
const fetchSite = fc.option(fc.constantFrom('cross-site', 'same-site', 'same-origin', 'none', 'CROSS-SITE', 'other'), { nil: undefined });
const origin = fc.option(
  fc.oneof(
    fc.constantFrom('null', 'https://evil.example', 'http://api.example.com', 'https://console.example.com'),
    fc.tuple(scheme, hostHeader).map(([s, h]) => `${s}://${h}`),
    anyText,
  ),
  { nil: undefined },
);
const allowList = fc.constantFrom<ReadonlySet<string>>(
  NONE,
  new Set(['https://console.example.com']),
  new Set(['https://evil.example', 'http://localhost:3000']),
);
const request = fc.record({
  method: fc.oneof(unsafeMethod, safeMethod),
  scheme,
  allowedOrigins: allowList,
  headers: fc.record(
    {
      host: fc.option(hostHeader, { nil: undefined }),
      origin,
      'sec-fetch-site': fetchSite,
      'content-type': fc.option(fc.oneof(jsonType, nonJsonType), { nil: undefined }),
    },
    { requiredKeys: [] },
  ),
});

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v);

test('property: safe methods always pass, whatever the headers', () => {
  fc.assert(fc.property(request, safeMethod, (r, method) => crossSiteRefusal({ ...r, method }) === null));
});

test('property: a change passes only as JSON, from no Origin, its own or an allowed one, never flagged cross-site by the browser', () => {
  fc.assert(
    fc.property(request, (r) => {
      const verdict = crossSiteRefusal(r);
      if (['GET', 'HEAD', 'OPTIONS'].includes(r.method.toUpperCase())) return verdict === null;
      if (verdict !== null) return true;
      const o = one(r.headers.origin);
      const parsed = o === undefined ? null : parseOrigin(o);
      const allowed = parsed !== null && r.allowedOrigins.has(parsed);
      const own = parsed !== null && parsed === ownOrigin(r.scheme, one(r.headers.host));
      const site = one(r.headers['sec-fetch-site'])?.toLowerCase();
      return (
        isJsonContentType(one(r.headers['content-type'])) &&
        (o === undefined || own || allowed) &&
        (site === undefined || site === 'same-origin' || site === 'none' || allowed) &&
        o !== 'null'
      );
    }),
  );
});

test('property: a change that is not JSON is never taken, from anywhere; a foreign Origin never, in any content type', () => {
  fc.assert(
    fc.property(request, unsafeMethod, nonJsonType, (r, method, type) => {
      const v = crossSiteRefusal({ ...r, method, headers: { ...r.headers, 'content-type': type } });
      return v !== null && (v.status === 415 || v.status === 403);
    }),
  );
  fc.assert(
    fc.property(request, unsafeMethod, fc.constantFrom('https://evil.example', 'null', 'http://attacker.test:8080'), (r, method, o) => {
      const v = crossSiteRefusal({ ...r, method, allowedOrigins: NONE, headers: { ...r.headers, origin: o, 'content-type': 'application/json' } });
      return v?.status === 403;
    }),
  );
  fc.assert(
    fc.property(request, unsafeMethod, fc.constantFrom('cross-site', 'same-site'), (r, method, site) => {
      const v = crossSiteRefusal({ ...r, method, headers: { ...r.headers, origin: undefined, 'sec-fetch-site': site, 'content-type': 'application/json' } });
      return v?.status === 403;
    }),
  );
});

test('property: what a non-browser client sends (JSON, no Origin, no Sec-Fetch-Site) always passes', () => {
  fc.assert(
    fc.property(
      fc.oneof(unsafeMethod, safeMethod),
      scheme,
      fc.option(hostHeader, { nil: undefined }),
      jsonType,
      allowList,
      (method, s, host, type, allowedOrigins) => {
        return crossSiteRefusal({ method, scheme: s, allowedOrigins, headers: { host, 'content-type': type } }) === null;
      },
    ),
  );
});

test('property: a request from its own origin (as a browser serialises it) passes', () => {
  fc.assert(
    fc.property(unsafeMethod, scheme, hostHeader, jsonType, fc.constantFrom(undefined, 'same-origin'), (method, s, host, type, site) => {
      const o = ownOrigin(s, host);
      if (o === null) return true;
      return crossSiteRefusal({ method, scheme: s, allowedOrigins: NONE, headers: { host, origin: o, 'sec-fetch-site': site, 'content-type': type } }) === null;
    }),
  );
});

test.run();
