/**
 * The dashboard's rollout page at 1,000 and 10,000 hosts: time from opening the page (in the app,
 * signed in) to the first paint of the host grid (the `nebula:grid-first-paint` performance mark
 * of services/api/ui/src/components/host-grid.tsx), in Debian's chromium, and the bundle's size.
 *
 *   npm run bench -- --only ui [--hosts 1000,10000] [--runs 3]   the part `ui` (bench/quick/)
 *   bash tools/node.sh tools/bench/ui-grid.ts [--hosts 1000,10000] [--runs 3]   alone, figures printed
 *
 * The rollout and its hosts are written straight into the bench's PostgreSQL: N hosts online
 * (a long heartbeat interval keeps them so), an app created through the API (its rollout expects
 * all N), then a result per host (80 % applied, 2 % failed with an error, the rest pending).
 * Figures are printed, never asserted.
 */
import { parseArgs } from 'node:util';
import { createDb, type Database, type Kysely } from '@nebula/db';
import { type BuiltFile, describeSizes, ensureUiBuilt, launchBrowser, uiBuildSizes } from '../src/e2e/browser.ts';
import { csv, mdTable, type PartResult } from './report.ts';
import { startBenchStack, suffix } from './services.ts';
import { fmtMs, summarize } from './stats.ts';

export interface UiGridOptions {
  /** Hosts of each rollout (default 1,000 and 10,000). */
  sizes: number[];
  /** Counted runs per size (after one warm-up). */
  runs: number;
  log(s: string): void;
}

async function seedHosts(db: Kysely<Database>, app: string, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `bench-ui-${n}-${String(i).padStart(5, '0')}`);
  const now = new Date();
  for (let i = 0; i < ids.length; i += 1000) {
    await db
      .insertInto('hosts')
      .values(
        ids.slice(i, i + 1000).map((id) => ({
          id,
          apps: [app],
          running: JSON.stringify([]),
          cores: 2,
          memory_mb: 2048,
          worker_version: 'bench',
          heartbeat_interval_seconds: 3600,
          first_seen: now,
          last_seen: now,
        })),
      )
      .execute();
  }
  return ids;
}

async function seedResults(db: Kysely<Database>, rolloutId: string, ids: string[]): Promise<void> {
  const t0 = Date.now();
  const rows = ids.flatMap((host, i) => {
    const r = i % 50;
    if (r >= 41) return []; // pending
    const failed = r === 40;
    return [
      {
        rollout_id: rolloutId,
        host,
        status: failed ? 'failed' : 'applied',
        error: failed ? 'container exited at once (exit code 1)' : null,
        image_digest: null,
        containers: JSON.stringify([]),
        pull_ms: 10,
        apply_ms: 100,
        reported_at: new Date(t0 + i * 3),
      },
    ];
  });
  for (let i = 0; i < rows.length; i += 1000)
    await db
      .insertInto('rollout_hosts')
      .values(rows.slice(i, i + 1000))
      .execute();
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

/** The part `ui` of `npm run bench`: first grid paint per size (median of the runs, min-max) and the bundle's files. */
export async function runUiGrid(opts: UiGridOptions): Promise<PartResult> {
  const { sizes, runs, log } = opts;
  log(await ensureUiBuilt());
  const files: BuiltFile[] = uiBuildSizes();
  log(`bundle:\n${describeSizes(files)}`);
  const samples = new Map<number, number[]>();
  const password = `bench-${suffix()}`;
  const stack = await startBenchStack({ apiEnv: { BASIC_AUTH_USER: 'admin', BASIC_AUTH_PASSWORD: password } });
  const db = createDb(stack.databaseUrl, 4);
  const browser = await launchBrowser();
  const url = `http://127.0.0.1:${stack.api?.port}`;
  try {
    for (const n of sizes) {
      const app = `ui-bench-${n}-${suffix()}`;
      const ids = await seedHosts(db, app, n);
      const created = await stack.client.call<{ rollout_id: string }>('POST', `/api/v2/apps/${app}`, { docker_image: '127.0.0.1:5000/nebula/echo:1' });
      if (created.status !== 200) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
      const id = created.body.rollout_id;
      await seedResults(db, id, ids);
      const times: number[] = [];
      for (let run = 0; run <= runs; run++) {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        await page.goto(`${url}/ui/`);
        await page.getByLabel('Username').fill('admin');
        await page.getByLabel('Password').fill(password);
        await page.getByRole('button', { name: 'Sign in' }).click();
        await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor({ timeout: 60_000 });
        // In the page (a string: the bench compiles without the DOM's types).
        await page.evaluate(
          `window.__t0 = performance.now(); history.pushState(null, '', '/ui/rollouts/${id}'); dispatchEvent(new PopStateEvent('popstate'));`,
        );
        await page.locator(`canvas.host-grid[data-painted-hosts="${n}"]`).waitFor({ timeout: 120_000 });
        const ms = Number(await page.evaluate(`(performance.getEntriesByName('nebula:grid-first-paint')[0]?.startTime ?? NaN) - window.__t0`));
        // Run 0 warms the API and the database up and is not counted.
        if (run > 0) times.push(ms);
        await page.close();
      }
      samples.set(n, times);
      log(`${n} hosts: first grid paint ${times.map((t) => `${t.toFixed(0)} ms`).join(', ')} (median ${fmtMs(summarize(times))})`);
    }
  } finally {
    await browser.close();
    await db.destroy();
    await stack.stop();
  }
  const total = files.reduce((a, f) => ({ bytes: a.bytes + f.bytes, gzip: a.gzip + f.gzipBytes }), { bytes: 0, gzip: 0 });
  const markdown = [
    `The dashboard's rollout page in Debian's chromium (headless, 1280x900): from opening it in the app (signed in, a client-side navigation) to the first paint of the host grid (performance mark \`nebula:grid-first-paint\`, drawn on a canvas once every page of hosts is read). The rollout's N hosts are written straight into the bench's PostgreSQL (80 % applied, 2 % failed, the rest pending). Median of ${runs} runs after a warm-up (min-max in brackets).`,
    '',
    mdTable(
      ['hosts', 'first grid paint'],
      sizes.map((n) => [n, fmtMs(summarize(samples.get(n) ?? []))]),
    ),
    '',
    'Bundle (services/api/ui/build.ts, minified):',
    '',
    mdTable(
      ['file', 'raw', 'gzip'],
      [...files.map((f) => [f.name.replace(/-[A-Z0-9]{8}\./, '-<hash>.'), kib(f.bytes), kib(f.gzipBytes)]), ['total', kib(total.bytes), kib(total.gzip)]],
    ),
    '',
    'Raw runs: [ui-grid.csv](ui-grid.csv).',
  ].join('\n');
  const rows = [...samples].flatMap(([hosts, times]) => times.map((ms, run) => ({ hosts, run: run + 1, first_grid_paint_ms: Number(ms.toFixed(1)) })));
  return { markdown, files: { 'ui-grid.csv': csv(rows) }, targets: [] };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { hosts: { type: 'string', default: '1000,10000' }, runs: { type: 'string', default: '3' } } });
  const r = await runUiGrid({ sizes: values.hosts.split(',').map(Number), runs: Number(values.runs), log: (s) => console.log(`[ui-grid] ${s}`) });
  console.log(r.markdown);
}
