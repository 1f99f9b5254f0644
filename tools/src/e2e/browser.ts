/**
 * A real browser for the dashboard's tests and benchmark: Debian's chromium (/usr/bin/chromium,
 * installed by tools/stack.sh with the other Debian packages) driven by playwright-core; no browser
 * is downloaded. Also builds the dashboard when its sources are newer than its build, and takes
 * the screenshots of docs/ui/ at the two widths the dashboard is made for.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { type Browser, chromium, type Page } from 'playwright-core';
import { REPO_ROOT } from './processes.ts';

const exec = promisify(execFile);

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const WIDTHS = { desktop: 1280, phone: 390 } as const;
export const SCREENSHOTS_DIR = join(REPO_ROOT, 'docs', 'ui');

/** Builds services/api/ui/dist when a source changed since the last build (seconds otherwise nothing). */
export async function ensureUiBuilt(): Promise<string> {
  const { stderr } = await exec(process.execPath, [join(REPO_ROOT, 'services/api/ui/build.ts'), '--if-stale'], { timeout: 120_000 });
  return stderr.trim();
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: run bash tools/stack.sh up (it installs Debian's chromium) or set CHROMIUM_PATH`);
  // --no-sandbox: the tests run as root, where chromium's sandbox refuses to start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'], timeout: 60_000 });
}

/** Screenshots of the page as it is, at 1280 px and at 390 px, to docs/ui/<name>-<width>.png; the viewport is put back. */
export async function screenshotBoth(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS_DIR, { recursive: true });
  const before = page.viewportSize() ?? { width: WIDTHS.desktop, height: 900 };
  for (const width of [WIDTHS.desktop, WIDTHS.phone]) {
    await page.setViewportSize({ width, height: width === WIDTHS.phone ? 844 : 900 });
    // Let a resize observer (the grid) redraw.
    await page.waitForTimeout(250);
    await page.screenshot({ path: join(SCREENSHOTS_DIR, `${name}-${width}.png`), fullPage: true, animations: 'disabled' });
  }
  await page.setViewportSize(before);
}

export interface BuiltFile {
  name: string;
  bytes: number;
  gzipBytes: number;
}

/** The sizes of the built dashboard's files (services/api/ui/dist; source maps left out). */
export function uiBuildSizes(): BuiltFile[] {
  const dist = join(REPO_ROOT, 'services/api/ui/dist');
  const names = [
    ...readdirSync(join(dist, 'assets'))
      .filter((f) => !f.endsWith('.map'))
      .map((f) => join('assets', f)),
    'index.html',
  ];
  return names.map((name) => {
    const body = readFileSync(join(dist, name));
    return { name, bytes: body.length, gzipBytes: gzipSync(body).length };
  });
}

export function describeSizes(files: BuiltFile[]): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const total = files.reduce((a, f) => ({ bytes: a.bytes + f.bytes, gzip: a.gzip + f.gzipBytes }), { bytes: 0, gzip: 0 });
  return [...files.map((f) => `  ${f.name}: ${kb(f.bytes)} (${kb(f.gzipBytes)} gzip)`), `  total: ${kb(total.bytes)} (${kb(total.gzip)} gzip)`].join('\n');
}
