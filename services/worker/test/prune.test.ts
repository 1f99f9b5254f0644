import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { noteImage, type SeenImage } from '../src/planner/image-gc.ts';
import { pruneHostImages } from '../src/prune.ts';
import { LABELS } from '../src/runtime/container-runtime.ts';
import { FakeRuntime } from '../src/runtime/fake-runtime.ts';

/** A device group's prune on the fake runtime: what goes, what stays, what is reported. */

const spec = (name: string, image: string) => ({
  name,
  image,
  env: {},
  ports: [],
  volumes: [],
  devices: [],
  privileged: false,
  networks: ['bridge'],
  command: null,
  entrypoint: null,
  labels: { [LABELS.owner]: 'nebula' },
  memoryLimitMb: null,
  cpuLimit: null,
  healthcheck: null,
});

test('removes every image no container uses but the current and previous of each app; reports their sizes', async () => {
  const rt = new FakeRuntime();
  for (const [ref, id, size] of [
    ['web:1', 'sha256:w1', 100],
    ['web:2', 'sha256:w2', 200],
    ['web:3', 'sha256:w3', 300],
    ['tool:1', 'sha256:t1', 1_000],
    ['used:1', 'sha256:u1', 5_000],
    ['keep:1', 'sha256:k1', 7_000],
  ] as const) {
    rt.images.set(ref, id);
    rt.imageSizes.set(id, size);
  }
  rt.images.set('tool:latest', 'sha256:t1');
  rt.seed(spec('theirs', 'used:1'), 'exited', 'sha256:u1');
  const web = [
    ['sha256:w1', 'web:1'],
    ['sha256:w2', 'web:2'],
    ['sha256:w3', 'web:3'],
  ].reduce<SeenImage[]>((h, [id, ref]) => noteImage(h, { id: id as string, ref: ref as string }), []);
  const out = await pruneHostImages(rt, { apps: [web], protect: ['sha256:k1'] }, { callTimeoutMs: 1000 });
  assert.equal(out, { bytes_freed: 1_100, images_removed: ['sha256:t1', 'sha256:w1'] });
  assert.equal([...rt.images.keys()].sort(), ['keep:1', 'used:1', 'web:2', 'web:3']);
});

test('an image the engine refuses (a container started on it meanwhile) stays and is not counted', async () => {
  const rt = new FakeRuntime();
  rt.images.set('a:1', 'sha256:a');
  rt.images.set('b:1', 'sha256:b');
  const remove = rt.removeImage.bind(rt);
  rt.removeImage = async (ref, opts) => (ref === 'a:1' ? false : remove(ref, opts));
  const out = await pruneHostImages(rt, { apps: [], protect: [] }, { callTimeoutMs: 1000 });
  assert.equal(out.images_removed, ['sha256:b']);
  assert.equal(out.bytes_freed, 1_048_576);
});

test('an engine that does not answer: the prune fails at its deadline instead of hanging', async () => {
  const rt = new FakeRuntime();
  rt.hang.add('listImages');
  // AbortSignal.timeout does not keep the process alive; the worker's other timers do, this one here.
  const alive = setTimeout(() => undefined, 10_000);
  try {
    await pruneHostImages(rt, { apps: [], protect: [] }, { callTimeoutMs: 50 });
    assert.unreachable('must fail');
  } catch (err) {
    assert.match(String(err), /listImages|timeout|aborted/i);
  } finally {
    clearTimeout(alive);
    rt.thaw();
  }
});

test.run();
