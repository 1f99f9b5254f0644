import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { type ControlPlaneKeys, createBusSetup, issueUserCreds, jwtPermissions } from './identity.ts';
import { apiPermissions, type BusPermissions, notifierPermissions } from './permissions.ts';

/**
 * One installation's bus, as files (made once; a second run keeps them, since new keys would lock
 * every joined host out):
 *
 *   nats.conf          include it in the nats-server configuration (operator mode, resolver folder)
 *   accounts/          the resolver's folder: the account JWTs the servers keep
 *   api.creds          the API's NATS identity            (NATS_CREDS of the API)
 *   notifier.creds     the notifier's                     (NATS_CREDS of the notifier)
 *   admin.creds        every right in the NEBULA account: for an operator's `nats` CLI, never a service
 *   control-plane.json the API's keys (BUS_KEYS_FILE): issue host credentials, revoke, sign app messages
 *
 * Everything but nats.conf is mode 600.
 */
export interface BusDirectory {
  dir: string;
  natsConf: string;
  apiCreds: string;
  notifierCreds: string;
  adminCreds: string;
  controlPlaneKeys: string;
  created: boolean;
}

export const controlPlaneKeysSchema = z.object({
  account_public_key: z.string().regex(/^A[A-Z2-7]{55}$/),
  account_signing_seed: z.string().regex(/^SA[A-Z2-7]{56}$/),
  operator_signing_seed: z.string().regex(/^SO[A-Z2-7]{56}$/),
  system_creds: z.string().includes('BEGIN NATS USER JWT'),
  message_signing_seed: z.string().regex(/^SN[A-Z2-7]{56}$/),
});

export function busDirectoryPaths(dir: string): Omit<BusDirectory, 'created'> {
  return {
    dir,
    natsConf: join(dir, 'nats.conf'),
    apiCreds: join(dir, 'api.creds'),
    notifierCreds: join(dir, 'notifier.creds'),
    adminCreds: join(dir, 'admin.creds'),
    controlPlaneKeys: join(dir, 'control-plane.json'),
  };
}

function writeSecret(path: string, text: string, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** The accounts folder a bus's nats.conf names (its `resolver` block), or null when it names none. */
export function resolverDirOf(natsConf: string): string | null {
  const m = /^resolver: \{[^\n]*\bdir: ("(?:[^"\\]|\\.)*")/m.exec(natsConf);
  if (!m?.[1]) return null;
  try {
    return JSON.parse(m[1]) as string;
  } catch {
    return null;
  }
}

export interface BusDirectoryOptions {
  /** The accounts folder as the server sees it (default DIR/accounts; another path for a server in a container, e.g. on its volume). */
  resolverDir?: string;
  /**
   * The owner given to the files the API and the notifier read (api.creds, notifier.creds,
   * control-plane.json), at every call: the uid their containers run as (10001 in the release
   * images). admin.creds and the folder stay the caller's.
   */
  serviceOwner?: { uid: number; gid: number };
}

/**
 * Makes the bus directory, or keeps the one there. A kept directory whose nats.conf names another
 * resolver folder than `resolverDir` is refused: its servers would look for the accounts elsewhere,
 * and the config cannot be made again without new keys.
 */
export async function ensureBusDirectory(dir: string, opts: BusDirectoryOptions = {}): Promise<BusDirectory> {
  const result = await makeBusDirectory(dir, opts);
  const owner = opts.serviceOwner;
  if (owner) for (const f of [result.apiCreds, result.notifierCreds, result.controlPlaneKeys]) chownSync(f, owner.uid, owner.gid);
  return result;
}

async function makeBusDirectory(dir: string, opts: BusDirectoryOptions): Promise<BusDirectory> {
  const paths = busDirectoryPaths(dir);
  if (existsSync(paths.controlPlaneKeys) && existsSync(paths.natsConf)) {
    if (opts.resolverDir !== undefined) {
      const has = resolverDirOf(readFileSync(paths.natsConf, 'utf8'));
      if (has !== opts.resolverDir) {
        throw new Error(
          `${paths.natsConf} names the resolver folder ${has ?? '(none)'}, not ${opts.resolverDir}: this bus directory was made for another NATS server (keep its setting, or make a new directory, which means new keys: every host joins again)`,
        );
      }
    }
    await refreshServiceCreds(paths);
    return { ...paths, created: false };
  }
  mkdirSync(join(dir, 'accounts'), { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const setup = await createBusSetup();
  const keys = setup.keys;
  writeSecret(paths.apiCreds, (await issueUserCreds(keys, { name: 'api', permissions: apiPermissions() })).creds);
  writeSecret(paths.notifierCreds, (await issueUserCreds(keys, { name: 'notifier', permissions: notifierPermissions() })).creds);
  writeSecret(paths.adminCreds, (await issueUserCreds(keys, { name: 'admin', permissions: { pub: { allow: ['>'] }, sub: { allow: ['>'] } } })).creds);
  // The keys last: their presence says the directory is complete.
  writeSecret(paths.natsConf, setup.serverConfig(opts.resolverDir ?? join(dir, 'accounts')), 0o644);
  writeSecret(paths.controlPlaneKeys, `${JSON.stringify(keys, null, 2)}\n`);
  return { ...paths, created: true };
}

/** The first JWT of a creds file's text. */
function credsJwt(creds: string): string | null {
  return /-----BEGIN NATS USER JWT-----\s+(\S+)\s+------END NATS USER JWT------/.exec(creds)?.[1] ?? null;
}

const sameRights = (a: BusPermissions, b: BusPermissions) =>
  JSON.stringify([[...a.pub.allow].sort(), [...a.sub.allow].sort()]) === JSON.stringify([[...b.pub.allow].sort(), [...b.sub.allow].sort()]);

/**
 * A kept directory's service credentials follow the code's rights: after an upgrade that gives the
 * API or the notifier more (a new stream to manage, a new subject), their creds are issued again
 * with the same keys (nothing else changes: hosts stay joined). The services read them at start.
 */
async function refreshServiceCreds(paths: Omit<BusDirectory, 'created'>): Promise<void> {
  const keys = readControlPlaneKeys(paths.controlPlaneKeys);
  for (const [name, file, rights] of [
    ['api', paths.apiCreds, apiPermissions()],
    ['notifier', paths.notifierCreds, notifierPermissions()],
  ] as const) {
    const jwt = existsSync(file) ? credsJwt(readFileSync(file, 'utf8')) : null;
    if (jwt !== null && sameRights(jwtPermissions(jwt), rights)) continue;
    writeSecret(file, (await issueUserCreds(keys, { name, permissions: rights })).creds);
  }
}

export function readControlPlaneKeys(path: string): ControlPlaneKeys {
  return controlPlaneKeysSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
}
