import { existsSync, readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { methodNotAllowed, sendJson } from './respond.ts';

/**
 * The dashboard's files at `/ui` (built by services/api/ui/build.ts into services/api/ui/dist):
 *
 *   /ui, /ui/<client route>     index.html (no-cache: it names the current hashed assets)
 *   /ui/assets/<name>-<hash>.*  the file, cached for a year (immutable: a new build has new names)
 *   anything else under /ui     404 JSON; the dashboard not built: 503 JSON saying how to build it
 *
 * Served before the auth stage: the files hold no data (everything comes through tRPC with the
 * user's credentials), and the login page must load without any. Every answer carries a CSP that
 * allows only this origin (no inline script, no other site's script, style, font or image), and
 * frames are refused. Only GET and HEAD.
 */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.json': 'application/json; charset=utf-8',
};

const SECURITY_HEADERS = {
  'content-security-policy': UI_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
};

/**
 * Where the build is: API_UI_DIR when set; else `ui/` beside the release bundle's main.js (the
 * image's /app/ui); else the source tree's services/api/ui/dist.
 */
export function defaultUiDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.API_UI_DIR) return env.API_UI_DIR;
  const bundled = fileURLToPath(new URL('./ui/', import.meta.url));
  if (existsSync(join(bundled, 'index.html'))) return bundled;
  return fileURLToPath(new URL('../../ui/dist/', import.meta.url));
}

export function isUiPath(path: string): boolean {
  return path === '/ui' || path.startsWith('/ui/');
}

/** What to answer for a path under /ui (pure): a file of the build, the index, or not found. */
export function uiTarget(path: string): { kind: 'asset'; file: string } | { kind: 'index' } | { kind: 'missing' } {
  const rest = path.replace(/^\/ui\/?/, '');
  if (rest.startsWith('assets/')) {
    const file = normalize(rest);
    // No way out of the folder, no hidden files.
    if (file.startsWith('..') || file.includes(`${sep}.`) || file.includes('\0')) return { kind: 'missing' };
    return { kind: 'asset', file };
  }
  // A client route: letters, digits and the usual path characters; a dotted name is a file that is not there.
  if (/^[A-Za-z0-9_\-/%]*$/.test(rest)) return { kind: 'index' };
  return { kind: 'missing' };
}

export function createUiStage(dir: string = defaultUiDir()) {
  return (req: IncomingMessage, res: ServerResponse, path: string) => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET');
    const target = uiTarget(path);
    if (target.kind === 'missing') return sendJson(res, 404, { error: 'not found' }, SECURITY_HEADERS);
    if (target.kind === 'index') {
      // Read on every request (small): a rebuild while the API runs is served at once.
      const file = join(dir, 'index.html');
      const index = existsSync(file) ? readFileSync(file) : null;
      if (index === null) {
        return sendJson(res, 503, { error: 'dashboard not built', message: 'run: node services/api/ui/build.ts' }, SECURITY_HEADERS);
      }
      return send(res, method, index, TYPES['.html'] ?? 'text/html', 'no-cache');
    }
    const file = join(dir, target.file);
    if (!existsSync(file) || !statSync(file).isFile()) return sendJson(res, 404, { error: 'not found' }, SECURITY_HEADERS);
    send(res, method, readFileSync(file), TYPES[extname(file)] ?? 'application/octet-stream', 'public, max-age=31536000, immutable');
  };
}

function send(res: ServerResponse, method: string, body: Buffer, type: string, cache: string): void {
  res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': cache, ...SECURITY_HEADERS });
  res.end(method === 'HEAD' ? undefined : body);
}
