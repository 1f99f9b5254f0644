export * from './black-hole-proxy.ts';
export * from './clock.ts';
export * from './fleet.ts';
export * from './host-signer.ts';
export * from './nats-server.ts';
export * from './ports.ts';
export * from './stalling-registry.ts';
export * from './wait.ts';
