import { HUB_DOMAIN, REGION_NAME } from '@nebula/contracts';
import { z } from 'zod';

export { HUB_DOMAIN, REGION_NAME };

/**
 * Regions as the control plane is told of them (NATS_REGIONS). A region is a NATS leaf node (or leaf
 * cluster) whose JetStream domain is named like the region; its hosts connect only to its servers, so
 * their consumers are made in that domain. A host outside any region (region null) uses the hub's.
 *
 *   NATS_REGIONS=eu=nats://10.0.0.2:4222,eu=nats://10.0.0.3:4222,us=tls://us.example:4222
 *     -> [{ name: 'eu', servers: [2 urls] }, { name: 'us', servers: [1 url] }]
 */
export interface Region {
  name: string;
  /** The region's leaf servers, as the API reaches them. */
  servers: string[];
}

/** A NATS_REGIONS entry that cannot be used; not worth retrying (the configuration is wrong). */
export class RegionsConfigError extends Error {
  override name = 'RegionsConfigError';
  /** The entry as written, but for any user or password in a URL (shown as `***`). */
  readonly entry: string;
  constructor(entry: string, reason: string) {
    const shown = entry.replace(/\/\/[^/@]*@/, '//***@');
    super(`NATS_REGIONS entry "${shown}": ${reason}`);
    this.entry = shown;
  }
}

const URL_SCHEMES = new Set(['nats:', 'tls:']);

function parseEntry(entry: string): { name: string; server: string } {
  const eq = entry.indexOf('=');
  if (eq < 0) throw new RegionsConfigError(entry, 'expected <region>=<url>, e.g. eu=nats://10.0.0.2:4222');
  const name = entry.slice(0, eq).trim();
  const server = entry.slice(eq + 1).trim();
  if (name === HUB_DOMAIN) throw new RegionsConfigError(entry, `"${HUB_DOMAIN}" is the hub's own JetStream domain, not a region`);
  if (!REGION_NAME.test(name)) throw new RegionsConfigError(entry, `the region name must match ${REGION_NAME.source} (lower-case letters, digits and "-")`);
  const url = URL.canParse(server) ? new URL(server) : null;
  if (url === null || !URL_SCHEMES.has(url.protocol) || url.hostname === '') {
    throw new RegionsConfigError(entry, 'the server must be a nats:// or tls:// URL with a host, e.g. tls://eu.example:4222');
  }
  if (url.username !== '' || url.password !== '') throw new RegionsConfigError(entry, 'no user or password in the URL: the API signs in with its bus keys');
  return { name, server };
}

/** Entries split on commas, each `name=url`; a name again adds servers; regions in order of first appearance. */
export function parseRegions(text: string | undefined): Region[] {
  const byName = new Map<string, string[]>();
  for (const raw of (text ?? '').split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const { name, server } = parseEntry(entry);
    const servers = byName.get(name) ?? [];
    if (!servers.includes(server)) servers.push(server);
    byName.set(name, servers);
  }
  return [...byName].map(([name, servers]) => ({ name, servers }));
}

/** `NATS_REGIONS` in a service's environment schema: the parsed regions, or the entry's error as the variable's issue. */
export const regionsEnv = z
  .string()
  .optional()
  .transform((v, ctx) => {
    try {
      return parseRegions(v);
    } catch (err) {
      if (!(err instanceof RegionsConfigError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
      return z.NEVER;
    }
  });
