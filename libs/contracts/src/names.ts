import { z } from 'zod';

/**
 * App names end up in NATS subjects (`apps.<name>`), consumer names and container names
 * (`<name>-<i>`), so no dots, wildcards, spaces or slashes.
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export const appNameSchema = z
  .string()
  .regex(NAME_PATTERN, 'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$ (letters, digits, "_" and "-"; no dots, spaces, slashes or wildcards)');

/** Host ids appear in subjects (`results.<app>.<host>`, `hosts.<host>`) and consumer names. */
export const hostIdSchema = z.string().regex(NAME_PATTERN, 'must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$ (letters, digits, "_" and "-")');

/**
 * A region: a NATS leaf node (or leaf cluster) whose JetStream domain has the region's name. Lower
 * case, as domains end up in subjects (`$JS.<domain>.API.>`); `hub` is the hub's own domain.
 */
export const REGION_NAME = /^[a-z][a-z0-9-]{0,30}$/;
export const HUB_DOMAIN = 'hub';

export const regionNameSchema = z
  .string()
  .regex(REGION_NAME, 'must match ^[a-z][a-z0-9-]{0,30}$ (lower-case letters, digits and "-")')
  .refine((n) => n !== HUB_DOMAIN, `"${HUB_DOMAIN}" is the hub's own domain, not a region`);

export type AppName = z.infer<typeof appNameSchema>;
export type HostId = z.infer<typeof hostIdSchema>;

/** Turns a machine hostname (which may be an FQDN) into a valid host id. */
export function hostIdFromHostname(hostname: string): string {
  const cleaned = hostname
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 63);
  return cleaned.length > 0 ? cleaned : 'host';
}
