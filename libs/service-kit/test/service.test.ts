import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fatalLogLine } from '@nebula/test-kit';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'slow-start.ts');

async function waitFor(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function start(mode: string) {
  const proc = spawn(process.execPath, [FIXTURE], { env: { PATH: process.env.PATH ?? '', FIXTURE: mode }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  // Deadline: a process that ignores the signal is killed, and the test fails on its exit.
  const deadline = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  void exited.then(() => clearTimeout(deadline));
  return { proc, exited, output: () => out };
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} while start() still waits: exits 0 at once (as PID 1 of a container, an unhandled SIGTERM is ignored)`, async () => {
    const svc = start('hang');
    await waitFor('the service to be starting', () => svc.output().includes('"starting"'), 10_000);
    svc.proc.kill(signal);
    const { code, signal: killedBy } = await svc.exited;
    assert.is(killedBy, null, `killed by ${killedBy}, not exited: ${svc.output()}`);
    assert.is(code, 0, svc.output());
    assert.match(svc.output(), /shutting down while starting/);
  });
}

test('a ConfigError thrown by start() exits 2, naming the variable', async () => {
  const svc = start('config-error');
  const { code } = await svc.exited;
  assert.is(code, 2, svc.output());
  const line = fatalLogLine(svc.output());
  assert.is(line.level, 60);
  assert.equal(line.variables, ['FIXTURE_VARIABLE']);
  assert.match(line.msg, 'FIXTURE_VARIABLE: cannot read');
});

test.run();
