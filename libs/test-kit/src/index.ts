export * from './nats-server.ts';
export * from './ports.ts';
export * from './wait.ts';
export * from './fleet.ts';
export * from './stalling-registry.ts';
export * from './black-hole-proxy.ts';
export * from './clock.ts';
