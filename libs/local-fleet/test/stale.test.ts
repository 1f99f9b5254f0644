import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanupStaleHosts, type HostFamily, isRunning, listLinks, listNetns, type ProcRef, procRef, startHosts } from '../src/index.ts';

// A family of this test's own: nothing of the e2e tests' or of a local fleet is ever touched.
const FAMILY: HostFamily = { prefix: 'nbx', dirPrefix: 'nebula-lf-test', network: 233 };

interface Held {
  id: string;
  dir: string;
  hosts: Array<{ name: string; netns: string; address: string; dockerHost: string; engine: ProcRef }>;
}

function hold(count: number): Promise<{ child: ChildProcess; held: Held }> {
  const child = spawn(
    process.execPath,
    [join(import.meta.dirname, 'fixtures', 'hold-hosts.ts'), FAMILY.prefix, FAMILY.dirPrefix, String(FAMILY.network), String(count), 'nebula/echo:1'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('hold-hosts did not start within 60 s')), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve({ child, held: JSON.parse(line) as Held });
      }
    });
    child.on('exit', (code) => reject(new Error(`hold-hosts exited (${code})`)));
  });
}

/** The cgroup folders of a container still there (v1: one per controller; v2: one). */
function containerGroupsLeft(id: string): string[] {
  const roots = ['/sys/fs/cgroup', ...readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c))];
  return roots.map((r) => join(r, 'docker', id)).filter((g) => existsSync(g));
}

const docker = (host: string, ...args: string[]) =>
  execFileSync('docker', ['-H', host, ...args], { timeout: 30_000 })
    .toString()
    .trim();
const ofRun = (names: string[], id: string) => names.filter((n) => n.startsWith(`${FAMILY.prefix}${id}`));

test('a run whose owner (and one engine) were killed is removed whole (engines, orphaned containers and their cgroups, namespaces, links, folder); a live run and other families are not touched', async () => {
  const [crashed, live] = await Promise.all([hold(2), hold(1)]);
  const c = crashed.held;
  const h1 = c.hosts[0]!;
  docker(h1.dockerHost, 'run', '-d', '--name', 'left', 'nebula/echo:1');
  const containerId = docker(h1.dockerHost, 'inspect', '-f', '{{.Id}}', 'left');
  const containerPid = procRef(Number(docker(h1.dockerHost, 'inspect', '-f', '{{.State.Pid}}', 'left')))!;
  assert.ok(isRunning(containerPid));
  // An orphan: a namespace of the family whose run has no folder (the temporary directory was emptied).
  const orphan = `${FAMILY.prefix}zzzzzh1`;
  execFileSync('ip', ['netns', 'add', orphan]);
  const otherFamily = await startHosts({ family: { prefix: 'nby', dirPrefix: 'nebula-lf-other', network: 234 }, hosts: 1 });
  try {
    crashed.child.kill('SIGKILL');
    await new Promise((r) => crashed.child.once('exit', r));
    assert.ok(
      c.hosts.every((h) => isRunning(h.engine)),
      'the engines outlive their owner',
    );
    // host-1's engine dies too (a kill -9 of a whole process group): its container runs on, orphaned.
    process.kill(h1.engine.pid, 'SIGKILL');
    for (let i = 0; i < 100 && isRunning(h1.engine); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!isRunning(h1.engine));
    assert.ok(isRunning(containerPid), 'the container outlives its engine');

    const removed = await cleanupStaleHosts(FAMILY);

    assert.equal(removed.sort(), [c.id, 'zzzzz'].sort());
    assert.ok(!c.hosts.some((h) => isRunning(h.engine)), 'no engine of the crashed run runs');
    assert.ok(!isRunning(containerPid), 'its container is gone too');
    assert.equal(containerGroupsLeft(containerId), [], 'and its cgroups');
    assert.equal(ofRun(await listNetns(), c.id), []);
    assert.equal(ofRun(await listLinks(), c.id), []);
    assert.ok(!(await listNetns()).includes(orphan));
    assert.ok(!existsSync(c.dir));
    // The live run is whole and answers.
    const l = live.held;
    assert.ok(existsSync(l.dir));
    assert.equal(ofRun(await listNetns(), l.id), [l.hosts[0]!.netns]);
    assert.ok(docker(l.hosts[0]!.dockerHost, 'version', '--format', '{{.Server.Version}}').length > 0);
    assert.ok(otherFamily.hosts[0]!.engine() !== null, 'another family is not touched');
    assert.equal(await cleanupStaleHosts(FAMILY), [], 'nothing more to remove');
  } finally {
    live.child.kill('SIGTERM');
    await new Promise((r) => live.child.once('exit', r));
    await otherFamily.cleanup();
    await cleanupStaleHosts(FAMILY);
  }
  assert.equal(ofRun(await listNetns(), live.held.id), [], 'the live run removed itself at SIGTERM');
  assert.ok(!existsSync(live.held.dir));
  assert.ok(!existsSync(otherFamily.dir));
});

test.run();
