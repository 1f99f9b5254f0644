import { createNebulaClient, httpStatusOf } from '@nebula/client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureUiBuilt, launchBrowser, screenshotBoth } from '../src/e2e/browser.ts';
import { type Harness, startHarness } from '../src/e2e/harness.ts';
import { buildImage, ECHO, pushAs, waitApplied } from '../src/e2e/steps.ts';

/**
 * The dashboard in a real browser (Debian's chromium through playwright-core) against the real
 * system: two API replicas, the notifier and three hosts with a worker each (e2e harness). A person
 * signs in, creates an app and watches its rollout reach every host in the grid, sees a bad config
 * refused beside its field, pushes an image that exits at once and reads each failed host's error,
 * rolls back; makes a cron job (a bad schedule refused beside its field) and a device group with the
 * app, adds the job to the group, prunes (prune_id grows) and opens the group's change as a rollout
 * (0 hosts: the harness's workers follow no group); a user with only "ro" (app, group, job) sees no
 * write action, and the API refuses one anyway.
 * Screenshots of each page at 1280 px and 390 px go to docs/ui/.
 */
const test = suite('dashboard in a browser');
const APP = 'ui-web';
const GROUP = 'ui-group';
const JOB = 'ui-job';
let h: Harness;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
let CRASH = '';
const VIEWER = { user: 'ui-viewer', password: 'viewer-password-1' };

test.before(async () => {
  await ensureUiBuilt();
  h = await startHarness({ hosts: 3, apps: () => [APP], images: ['nebula/echo:1', ECHO] });
  CRASH = `127.0.0.1:5000/nebula/e2e-${h.runId}:crash`;
  await buildImage(CRASH, `FROM ${ECHO}\nENTRYPOINT ["/bin/false"]\n`);
  await pushAs(CRASH, CRASH);
  await h.rest.expect(200, 'POST', `/api/v2/users/${VIEWER.user}`, { body: { password: VIEWER.password } });
  await h.rest.expect(200, 'POST', '/api/v2/user_groups/ui-viewers', {
    body: { group_members: [VIEWER.user], apps: { [APP]: 'ro' }, device_groups: { [GROUP]: 'ro' }, cron_jobs: { [JOB]: 'ro' } },
  });
  browser = await launchBrowser();
  ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await ctx.newPage();
});

test.after(async () => {
  await browser?.close();
  await h?.close();
});

const T = 60_000;
const legendCount = (p: Page, state: string, n: number) => p.locator(`.legend li[data-state="${state}"][data-count="${n}"]`).waitFor({ timeout: T });

async function signIn(p: Page, user: string, password: string): Promise<void> {
  await p.goto(`${h.apiUrl(0)}/ui/`);
  await p.getByLabel('Username').fill(user);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Sign in' }).click();
}

async function openApp(p: Page, name: string): Promise<void> {
  await p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Apps' }).click();
  await p.getByRole('link', { name, exact: true }).click();
  await p.getByRole('heading', { level: 1, name }).waitFor({ timeout: T });
}

async function submitConfig(p: Page, section: string, config: Record<string, unknown>, button: string): Promise<void> {
  await p.getByText(section, { exact: true }).click();
  await p.getByLabel('Config (JSON)').fill(JSON.stringify(config, null, 2));
  await p.getByRole('button', { name: button }).click();
}

test('the page is ours only: index.html and hashed assets with a self-only CSP, no other origin', async () => {
  const res = await fetch(`${h.apiUrl(0)}/ui/apps/anything`);
  assert.is(res.status, 200, 'a client route answers index.html');
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /script-src 'self'/);
  assert.not.match(csp, /unsafe-inline|https?:/);
  const html = await res.text();
  const js = /src="(\/ui\/assets\/main-[A-Z0-9]+\.js)"/.exec(html)?.[1];
  assert.ok(js, html);
  const asset = await fetch(`${h.apiUrl(0)}${js}`);
  assert.is(asset.status, 200);
  assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
  assert.match(asset.headers.get('content-type') ?? '', /javascript/);
  assert.not.match(html, /https?:\/\//, 'index.html names nothing of another origin');
});

test('a wrong password is refused on the login page; the admin signs in', async () => {
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await signIn(page, 'admin', 'not-the-password');
  await page.getByRole('alert').filter({ hasText: 'Wrong username or password' }).waitFor({ timeout: T });
  await screenshotBoth(page, 'login');
  await page.getByLabel('Password').fill(h.auth.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor({ timeout: T });
  const origin = new URL(h.apiUrl(0)).origin;
  const foreign = requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:'));
  assert.equal(foreign, [], 'every request goes to the API itself');
  assert.ok(
    requests.every((u) => !u.includes(h.auth.password)),
    'the password is never in a URL',
  );
});

test('an app created in the dashboard: its rollout reaches every host in the grid', async () => {
  await page.getByText('New app', { exact: true }).click();
  await page.getByLabel('App name').fill(APP);
  await page.getByLabel('Config (JSON)').fill(JSON.stringify({ docker_image: ECHO, containers_per: { server: 1 }, env_vars: { V: '1' } }));
  await page.getByRole('button', { name: 'Create app' }).click();
  await page.getByRole('heading', { level: 1, name: `Rollout of ${APP}, revision 1` }).waitFor({ timeout: T });
  await legendCount(page, 'applied', 3);
  assert.is(await page.locator('canvas.host-grid').getAttribute('data-painted-hosts'), '3');
  await page.getByText('complete').first().waitFor({ timeout: T });
  await screenshotBoth(page, 'rollout');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Apps' }).click();
  await page.locator(`tr[data-app="${APP}"]`).getByText('3 / 3').waitFor({ timeout: T });
  await screenshotBoth(page, 'apps');
});

test('a config the schema refuses is shown beside its field and never sent', async () => {
  await openApp(page, APP);
  await page.getByText('Update the config', { exact: true }).click();
  await page.getByLabel('Config (JSON)').fill(JSON.stringify({ docker_image: ECHO, containers_per: { server: 1 }, log_max_files: 0, nonsense: 1 }));
  await page.locator('li[data-field="log_max_files"]').waitFor({ timeout: T });
  await page.locator('li[data-field="nonsense"]').waitFor({ timeout: T });
  assert.ok(await page.getByRole('button', { name: 'Update' }).isDisabled(), 'no update with errors');
  await screenshotBoth(page, 'app-editor');
  await page.getByText('Update the config', { exact: true }).click();
});

test('an image that exits at once: every host fails with its error; a rollback from the history', async () => {
  await submitConfig(page, 'Update the config', { docker_image: CRASH, containers_per: { server: 1 }, env_vars: { V: '2' } }, 'Update');
  await page.getByRole('heading', { level: 1, name: `Rollout of ${APP}, revision 2` }).waitFor({ timeout: T });
  await legendCount(page, 'failed', 3);
  const failures = page.locator('.failures li');
  assert.is(await failures.count(), 3);
  const text = (await failures.first().locator('pre').textContent()) ?? '';
  assert.ok(text.length > 0 && text !== '(no error text)', `a failed host's error is shown: ${text}`);
  await screenshotBoth(page, 'rollout-failed');

  await openApp(page, APP);
  await page.getByRole('button', { name: 'Roll back to revision 1' }).click();
  await page.getByRole('heading', { level: 1, name: `Rollout of ${APP}, revision 3` }).waitFor({ timeout: T });
  await legendCount(page, 'applied', 3);
  await openApp(page, APP);
  await page.getByText('Compare revisions').waitFor({ timeout: T });
  await screenshotBoth(page, 'app');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Hosts' }).click();
  await page.locator('tr[data-host]').nth(2).waitFor({ timeout: T });
  assert.is(await page.locator('tr[data-host]').count(), 3);
  await screenshotBoth(page, 'hosts');
});

const nav = (p: Page, name: string) => p.getByRole('navigation', { name: 'Main' }).getByRole('link', { name }).click();

test('a cron job made in the dashboard: a bad schedule refused beside its field, then created and opened', async () => {
  await nav(page, 'Cron jobs');
  await page.getByRole('heading', { level: 1, name: 'Cron jobs' }).waitFor({ timeout: T });
  await page.getByText('New cron job', { exact: true }).click();
  await page.getByLabel('Cron job name').fill(JOB);
  const editor = page.getByLabel('Cron job config (JSON)');
  await editor.fill(JSON.stringify({ docker_image: ECHO, schedule: '61 * * * *' }));
  await page.locator('li[data-field="schedule"]').waitFor({ timeout: T });
  assert.ok(await page.getByRole('button', { name: 'Create cron job' }).isDisabled(), 'no create with errors');
  await editor.fill(JSON.stringify({ docker_image: ECHO, schedule: '*/5 * * * *', timeout_seconds: 60 }, null, 2));
  await page.getByRole('button', { name: 'Create cron job' }).click();
  await page.getByRole('heading', { level: 1, name: `Cron job ${JOB}` }).waitFor({ timeout: T });
  await page.getByText('No runs reported yet', { exact: false }).waitFor({ timeout: T });
  await screenshotBoth(page, 'cron-job');
  await nav(page, 'Cron jobs');
  await page.locator(`tr[data-cron-job="${JOB}"]`).getByText('*/5 * * * *').waitFor({ timeout: T });
  await screenshotBoth(page, 'cron-jobs');
});

test('a device group made in the dashboard with the app: device_group_id 1; a cron job added (2); a prune grows prune_id; its change opens as a rollout', async () => {
  await nav(page, 'Device groups');
  await page.getByRole('heading', { level: 1, name: 'Device groups' }).waitFor({ timeout: T });
  await page.getByText('New device group', { exact: true }).click();
  await page.getByLabel('Group name').fill(GROUP);
  await page.getByRole('group', { name: 'Apps' }).getByLabel(APP).check();
  await page.getByRole('button', { name: 'Create device group' }).click();
  await page.getByRole('heading', { level: 1, name: `Device group ${GROUP}` }).waitFor({ timeout: T });
  await nav(page, 'Device groups');
  const row = page.locator(`tr[data-group="${GROUP}"]`);
  await row.getByTestId('device-group-id').getByText('1', { exact: true }).waitFor({ timeout: T });
  await row.getByTestId('prune-id').getByText('1', { exact: true }).waitFor({ timeout: T });
  assert.is(await row.getByRole('link', { name: APP }).count(), 1, 'the app is listed, linked');
  await screenshotBoth(page, 'device-groups');

  await row.getByRole('link', { name: GROUP }).click();
  await page.locator(`[data-members="app"] li[data-member="${APP}"]`).waitFor({ timeout: T });
  await page.getByLabel('Add cron job').selectOption(JOB);
  await page.locator('[data-members="cron-job"]').getByRole('button', { name: 'Add' }).click();
  await page.locator(`[data-members="cron-job"] li[data-member="${JOB}"]`).waitFor({ timeout: T });
  await page.getByTestId('device-group-id').getByText('2', { exact: true }).waitFor({ timeout: T });
  await page.getByRole('button', { name: 'Prune images' }).click();
  await page.getByTestId('prune-id').getByText('2', { exact: true }).waitFor({ timeout: T });
  await page.locator('tr[data-action="prune"]').waitFor({ timeout: T });
  assert.equal(await page.locator('tr[data-rollout]').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-action'))), ['prune', 'update', 'create']);
  await screenshotBoth(page, 'device-group');
  const g = await h.client().deviceGroups.get.query({ name: GROUP });
  assert.equal([g.device_group_id, g.prune_id, g.apps, g.cron_jobs], [2, 2, [APP], [JOB]]);

  await page.getByRole('link', { name: 'message 1', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: `Change of device group ${GROUP}, message 1` }).waitFor({ timeout: T });
  // The harness's workers follow no group: nothing to wait for.
  await page.getByText('0 / 0 applied', { exact: false }).waitFor({ timeout: T });
  await screenshotBoth(page, 'device-group-change');
  await page.getByRole('link', { name: GROUP, exact: true }).click();
  await page.getByRole('link', { name: 'what each host freed' }).click();
  await page.getByRole('heading', { level: 1, name: `Prunes of ${GROUP}` }).waitFor({ timeout: T });
  await page.getByTestId('prune-total').waitFor({ timeout: T });
  await screenshotBoth(page, 'prunes');
});

test('a user with "ro" on the group and the job sees no group or cron write action; the API refuses a prune', async () => {
  const viewerCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const p = await viewerCtx.newPage();
    await signIn(p, VIEWER.user, VIEWER.password);
    await p.getByRole('heading', { level: 1, name: 'Apps' }).waitFor({ timeout: T });
    await nav(p, 'Device groups');
    await p.locator(`tr[data-group="${GROUP}"]`).getByTestId('device-group-id').waitFor({ timeout: T });
    assert.is(await p.getByText('New device group', { exact: true }).count(), 0, 'no create form');
    await p.getByRole('link', { name: GROUP, exact: true }).click();
    await p.locator(`li[data-member="${JOB}"]`).waitFor({ timeout: T });
    for (const name of ['Prune images', 'Delete group…', 'Add', 'Remove'])
      assert.is(await p.getByRole('button', { name, exact: true }).count(), 0, `no ${name}`);
    assert.is(await p.getByLabel('Add app').count(), 0, 'no picker');
    await screenshotBoth(p, 'device-group-read-only');
    await nav(p, 'Cron jobs');
    await p.locator(`tr[data-cron-job="${JOB}"]`).getByText('*/5 * * * *').waitFor({ timeout: T });
    assert.is(await p.getByText('New cron job', { exact: true }).count(), 0, 'no create form');
    await p.getByRole('link', { name: JOB, exact: true }).click();
    await p.getByRole('heading', { level: 1, name: `Cron job ${JOB}` }).waitFor({ timeout: T });
    assert.is(await p.getByText('Update the config').count(), 0, 'no editor');
    assert.is(await p.getByRole('button', { name: 'Delete cron job…' }).count(), 0, 'no delete');
    const viewer = createNebulaClient({ url: h.apiUrl(0), username: VIEWER.user, password: VIEWER.password });
    const refused = await viewer.deviceGroups.prune.mutate({ name: GROUP }).then(
      () => null,
      (err: unknown) => err,
    );
    assert.is(httpStatusOf(refused), 403, 'the API refuses the viewer a prune');
    assert.is((await h.client().deviceGroups.get.query({ name: GROUP })).prune_id, 2, 'no prune happened');
  } finally {
    await viewerCtx.close();
  }
});

test('a user with "ro" on the app sees no write action, and the API refuses one anyway', async () => {
  const viewerCtx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const p = await viewerCtx.newPage();
    await signIn(p, VIEWER.user, VIEWER.password);
    await p.getByRole('heading', { level: 1, name: 'Apps' }).waitFor({ timeout: T });
    assert.is(await p.getByText('New app', { exact: true }).count(), 0, 'no create form');
    await openApp(p, APP);
    await p.getByTestId('read-only').waitFor({ timeout: T });
    for (const name of ['Start', 'Stop', 'Restart', 'Roll', 'Pull']) assert.is(await p.getByRole('button', { name, exact: true }).count(), 0, `no ${name}`);
    assert.is(await p.getByText('Update the config').count(), 0, 'no editor');
    assert.is(await p.getByRole('button', { name: /Roll back/ }).count(), 0, 'no rollback');
    await screenshotBoth(p, 'app-read-only');
    const viewer = createNebulaClient({ url: h.apiUrl(0), username: VIEWER.user, password: VIEWER.password });
    const refused = await viewer.apps.stop.mutate({ name: APP }).then(
      () => null,
      (err: unknown) => err,
    );
    assert.is(httpStatusOf(refused), 403, 'the API refuses the viewer a stop');
    const app = await h.client().apps.get.query({ name: APP });
    assert.ok(app.running, 'still running');
  } finally {
    await viewerCtx.close();
  }
});

test('the rollout of revision 3 stays applied on every host', async () => {
  const app = await h.client().apps.get.query({ name: APP });
  assert.is(app.app_id, 3);
  await waitApplied(
    h,
    app.rollout_id,
    h.hosts.map((x) => x.name),
  );
});

test.run();
