import { statfs } from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ContainerSpec } from '../src/runtime/container-runtime.ts';
import { DockerRuntime } from '../src/runtime/docker-runtime.ts';
import { UsageGatherer } from '../src/usage.ts';
import { docker, ECHO } from './docker-helpers.ts';
import { suffix } from './helpers.ts';

/** Usage read from a real Docker engine: one-shot stats of a running container, the data root, a sample. */
const runtime = new DockerRuntime(docker, { callTimeoutMs: 10_000 });

test('stats of a running container, null for a gone one; the data root; a whole sample', async () => {
  const host = `stats-${suffix()}`;
  const spec: ContainerSpec = {
    name: `nebula-test-${suffix()}`,
    image: ECHO,
    env: {},
    ports: [],
    volumes: [],
    devices: [],
    privileged: false,
    networks: ['bridge'],
    command: null,
    entrypoint: null,
    labels: { 'io.nebula.test': 'true', 'io.nebula.owner': 'nebula', 'io.nebula.host': host, 'io.nebula.app': 'echo' },
    memoryLimitMb: 64,
    cpuLimit: null,
    healthcheck: null,
  };
  const id = await runtime.create(spec);
  try {
    await runtime.start(id);
    const st = await runtime.containerStats(id, { name: spec.name });
    assert.ok(st !== null);
    assert.ok(st.memoryBytes !== null && st.memoryBytes > 0, `memory ${st.memoryBytes}`);
    assert.is(st.memoryLimitBytes, 64 * 1024 * 1024);
    assert.ok(st.cpuPercent === null || st.cpuPercent >= 0, `cpu ${st.cpuPercent}`);

    const root = await runtime.dataRoot();
    assert.match(root, /^\//);

    // The data root as this process sees it: the test runs on the engine's host, or not (then null).
    const readable = await statfs(root).then(
      () => true,
      () => false,
    );
    const sample = await new UsageGatherer({ runtime, hostId: host, cores: 1, callTimeoutMs: 10_000 }).gather();
    assert.equal(
      sample.containers.map((c) => [c.name, c.app]),
      [[spec.name, 'echo']],
    );
    assert.ok((sample.containers[0]?.memory_bytes ?? 0) > 0);
    assert.is(sample.disk === null, !readable);
    if (sample.disk) assert.ok(sample.disk.total_bytes >= sample.disk.used_bytes && sample.disk.total_bytes > 0);
    assert.ok(sample.memory.total_bytes > 0);
  } finally {
    await runtime.remove(id);
  }
  assert.is(await runtime.containerStats(id), null);
});

test.run();
