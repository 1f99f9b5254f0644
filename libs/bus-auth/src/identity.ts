import { createHash } from 'node:crypto';
import { decode, encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { createAccount, createOperator, createServer, createUser, fromSeed, type KeyPair } from '@nats-io/nkeys';
import type { BusPermissions } from './permissions.ts';

/**
 * The bus's keys, made once per installation (`tools/bus-init`, the local stack, each test server):
 *
 *   operator ──signs──▶ account NEBULA (JetStream on; its revocations)  ──signing key──▶ users
 *            ──signs──▶ account SYS (the server's system account)       ──────────────▶ system user
 *
 * NATS runs in operator mode: a client proves its identity by signing the server's nonce with its
 * user key, and presents a user JWT (its permissions, its expiry) signed by the account's signing
 * key. The control plane holds the account signing key (to issue host credentials), the operator
 * signing key and a system user (to push the account with new revocations), and a separate key it
 * signs app messages with. Nothing here is a password that travels.
 */
export interface ControlPlaneKeys {
  /** `A...`: the NEBULA account. */
  account_public_key: string;
  /** `SA...`: issues user JWTs (hosts, services). */
  account_signing_seed: string;
  /** `SO...`: signs the NEBULA account JWT again when a host is revoked. */
  operator_signing_seed: string;
  /** A system account user's creds file text: pushes account updates to the servers. */
  system_creds: string;
  /** `SN...`: signs every app message; its public key is pinned by each host at join. */
  message_signing_seed: string;
}

export interface BusSetup {
  keys: ControlPlaneKeys;
  /** The text of a nats-server configuration block (operator, system account, resolver). */
  serverConfig(resolverDir: string): string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const seedOf = (kp: KeyPair) => dec.decode(kp.getSeed());
export const keyFromSeed = (seed: string): KeyPair => fromSeed(enc.encode(seed));

export const ACCOUNT_NAME = 'NEBULA';

/** The NEBULA account's claims: the same every time, but for the revocations. */
export async function nebulaAccountJwt(
  keys: Pick<ControlPlaneKeys, 'account_public_key' | 'account_signing_seed' | 'operator_signing_seed'>,
  revocations: Record<string, number> = {},
): Promise<string> {
  return encodeAccount(
    ACCOUNT_NAME,
    keys.account_public_key,
    {
      limits: {
        subs: -1,
        conn: -1,
        leaf: -1,
        imports: -1,
        exports: -1,
        data: -1,
        payload: -1,
        wildcards: true,
        mem_storage: -1,
        disk_storage: -1,
        streams: -1,
        consumer: -1,
      },
      signing_keys: [keyFromSeed(keys.account_signing_seed).getPublicKey()],
      revocations,
      // Nobody connects with a JWT alone: every client must sign the nonce with its key.
      disallow_bearer: true,
    },
    { signer: keyFromSeed(keys.operator_signing_seed) },
  );
}

/** A creds file's text for a user of the NEBULA account. */
export async function issueUserCreds(
  keys: Pick<ControlPlaneKeys, 'account_public_key' | 'account_signing_seed'>,
  user: { name: string; permissions: BusPermissions; expiresAt?: Date; key?: KeyPair },
): Promise<{ creds: string; jwt: string; publicKey: string }> {
  const ukp = user.key ?? createUser();
  const jwt = await issueUserJwt(keys, { ...user, publicKey: ukp.getPublicKey() });
  return { creds: dec.decode(fmtCreds(jwt, ukp)), jwt, publicKey: ukp.getPublicKey() };
}

/** A user JWT for a public key whose seed the caller never sees (a host's). */
export async function issueUserJwt(
  keys: Pick<ControlPlaneKeys, 'account_public_key' | 'account_signing_seed'>,
  user: { name: string; publicKey: string; permissions: BusPermissions; expiresAt?: Date },
): Promise<string> {
  return encodeUser(
    user.name,
    user.publicKey,
    keyFromSeed(keys.account_signing_seed),
    { issuer_account: keys.account_public_key, pub: user.permissions.pub, sub: user.permissions.sub, subs: -1, data: -1, payload: -1 },
    user.expiresAt ? { exp: Math.floor(user.expiresAt.getTime() / 1000) } : {},
  );
}

/** The rights a user JWT grants (its `nats.pub` and `nats.sub`), to compare with what the code grants now. */
export function jwtPermissions(jwt: string): BusPermissions {
  const nats = (decode(jwt) as { nats?: { pub?: { allow?: string[] }; sub?: { allow?: string[] } } }).nats ?? {};
  return { pub: { allow: nats.pub?.allow ?? [] }, sub: { allow: nats.sub?.allow ?? [] } };
}

/** When a user JWT expires (null: never). */
export function jwtExpiry(jwt: string): Date | null {
  const exp = decode(jwt).exp;
  return exp ? new Date(exp * 1000) : null;
}

/** A short, stable name of a public key: what a join token carries so a host can check the API's key. */
export function keyFingerprint(publicKey: string): string {
  return createHash('sha256').update(publicKey).digest('hex').slice(0, 32);
}

/** New keys for a new installation. */
export async function createBusSetup(): Promise<BusSetup> {
  const operator = createOperator();
  const operatorSigning = createOperator();
  const account = createAccount();
  const accountSigning = createAccount();
  const system = createAccount();
  const keys0 = {
    account_public_key: account.getPublicKey(),
    account_signing_seed: seedOf(accountSigning),
    operator_signing_seed: seedOf(operatorSigning),
  };
  const operatorJwt = await encodeOperator('nebula', operator, { signing_keys: [operatorSigning.getPublicKey()], system_account: system.getPublicKey() });
  const systemJwt = await encodeAccount(
    'SYS',
    system,
    { limits: { subs: -1, conn: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true } },
    { signer: operatorSigning },
  );
  const systemUser = createUser();
  const systemUserJwt = await encodeUser('system', systemUser, system, {
    pub: { allow: ['$SYS.REQ.CLAIMS.UPDATE', '$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE'] },
    sub: { allow: ['_INBOX.>'] },
  });
  const accountJwt = await nebulaAccountJwt(keys0);
  const keys: ControlPlaneKeys = { ...keys0, system_creds: dec.decode(fmtCreds(systemUserJwt, systemUser)), message_signing_seed: seedOf(createServer()) };
  return {
    keys,
    serverConfig: (resolverDir) =>
      [
        `operator: ${operatorJwt}`,
        `system_account: ${system.getPublicKey()}`,
        // The servers keep accounts in a folder and take updates pushed by the system user
        // (how a revocation reaches them); they never delete one.
        `resolver: { type: full, dir: ${JSON.stringify(resolverDir)}, allow_delete: false, interval: "2m" }`,
        'resolver_preload: {',
        `  ${system.getPublicKey()}: ${systemJwt}`,
        `  ${account.getPublicKey()}: ${accountJwt}`,
        '}',
        '',
      ].join('\n'),
  };
}
