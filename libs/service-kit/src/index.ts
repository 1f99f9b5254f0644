export * from './env.ts';
export * from './logger.ts';
export * from './ops-http.ts';
export * from './service.ts';
