import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import type { ControlPlaneKeys } from './identity.ts';
import { nebulaAccountJwt } from './identity.ts';

const updateReply = z.object({
  data: z.object({ code: z.number(), message: z.string().optional() }).optional(),
  error: z.object({ code: z.number(), description: z.string().optional() }).optional(),
});

export class AccountPushError extends Error {
  readonly retryable = true;
}

/**
 * Pushes the NEBULA account with these revocations (user public key -> unix seconds: credentials
 * issued before are refused) to the servers, as the system user. A server applies it at once: the
 * revoked users' connections are closed and they cannot connect again.
 */
export async function pushAccountRevocations(
  keys: ControlPlaneKeys,
  revocations: Record<string, number>,
  opts: { servers: string | string[]; timeoutMs: number; tls?: { ca?: string } },
): Promise<void> {
  const jwt = await nebulaAccountJwt(keys, revocations);
  let nc: NatsConnection | null = null;
  try {
    nc = await connect({
      servers: opts.servers,
      name: 'nebula-api-account-push',
      authenticator: credsAuthenticator(new TextEncoder().encode(keys.system_creds)),
      timeout: opts.timeoutMs,
      maxReconnectAttempts: 0,
      ...(opts.tls ? { tls: opts.tls } : {}),
    });
    const reply = await nc.request('$SYS.REQ.CLAIMS.UPDATE', jwt, { timeout: opts.timeoutMs });
    const parsed = updateReply.safeParse(reply.json());
    if (!parsed.success) throw new AccountPushError(`the server answered the account update with ${reply.string().slice(0, 200)}`);
    const { data, error } = parsed.data;
    if (error || (data && data.code !== 200)) {
      throw new AccountPushError(`the server refused the account update: ${error?.description ?? data?.message ?? JSON.stringify(parsed.data)}`);
    }
  } catch (err) {
    if (err instanceof AccountPushError) throw err;
    throw new AccountPushError(`could not push the account to NATS: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    await nc?.close().catch(() => undefined);
  }
}
