export * from './worker.ts';
export * from './errors.ts';
export * from './planner/plan-host.ts';
export * from './planner/container-spec.ts';
export * from './executor.ts';
export * from './runtime/container-runtime.ts';
export * from './runtime/fake-runtime.ts';
export { consumerName } from './app-runner.ts';
