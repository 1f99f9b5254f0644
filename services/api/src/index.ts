/**
 * @nebula/api: the types other projects may use (the typed client imports `AppRouter` type-only)
 * and the in-process server tests start.
 */

export { type AuthSettings, authSettings, describeAuth, type Identity } from './auth.ts';
export { type ApiServer, type ApiServerOptions, createApiServer } from './http/server.ts';
export type { AppRouter } from './routers/_app.ts';
export { appRouter } from './routers/_app.ts';
export type { AppDoc } from './routers/apps.ts';
export type { Context } from './trpc.ts';
