export { consumerName } from './app-runner.ts';
export * from './errors.ts';
export * from './executor.ts';
export * from './planner/container-spec.ts';
export * from './planner/plan-host.ts';
export * from './runtime/container-runtime.ts';
export * from './runtime/fake-runtime.ts';
export * from './worker.ts';
