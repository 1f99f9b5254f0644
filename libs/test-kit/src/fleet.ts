/**
 * Several Docker hosts on one machine, for end-to-end tests and benchmarks of the real path: the
 * tests' family of the simulated hosts of @nebula/local-fleet (names `nbt…`, addresses 10.231.X.Y),
 * which `npm start`'s local fleet shares with another family of its own.
 */
import { cleanupStaleHosts, FAMILIES, type SimulatedHost, type SimulatedHosts, startHosts } from '@nebula/local-fleet';

export type TestHost = SimulatedHost;
export type Fleet = SimulatedHosts;

/**
 * Starts `count` hosts (`host-1`...) and loads `images` (from the root engine) into each.
 * Needs root, iproute2, socat and dockerd.
 */
export function startFleet(opts: { hosts: number; images?: string[]; registryPort?: number }): Promise<Fleet> {
  return startHosts({ family: FAMILIES.tests, namePrefix: 'host', ...opts });
}

/** Removes what fleets of processes that no longer run left behind (after a crash or a kill -9). */
export async function cleanupStaleFleets(): Promise<void> {
  await cleanupStaleHosts(FAMILIES.tests);
}
