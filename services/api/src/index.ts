/**
 * @nebula/api: the types other projects may use (the typed client imports `AppRouter` type-only)
 * and the in-process server tests start.
 */
export type { AppRouter } from './routers/_app.ts';
export type { AppDoc } from './routers/apps.ts';
export { appRouter } from './routers/_app.ts';
export { createApiServer, type ApiServer, type ApiServerOptions } from './http/server.ts';
export { authSettings, describeAuth, type AuthSettings, type Identity } from './auth.ts';
export type { Context } from './trpc.ts';
