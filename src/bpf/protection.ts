/**
 * One-shot protection operations on a pin dir (operator command, tests, benchmarks), each through
 * a SteeringWriter opened and closed around it, as steering.ts does for steering.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MAPS } from './maps-layout';
import { possibleCpus, u32, withPinnedMap } from './pinned-map';
import { type ProtectCounters, type ProtectionMode, type ProtectStats, sumProtectStats } from './protect-maps';
import { withSteering } from './steering';

/** Sets a routed pair's protection mode; false when it has no route. */
export function setProtection(pinDir: string, ifindex: number, remoteAddress: string, mode: ProtectionMode): boolean {
  return withSteering(pinDir, (w) => w.setProtection(ifindex, remoteAddress, mode));
}

/** Sets the node-wide duplication budget (bytes/s, burst bytes). */
export function setDupBudget(pinDir: string, rateBytesPerSec: number, burstBytes: number): boolean {
  return withSteering(pinDir, (w) => w.setDupBudget(rateBytesPerSec, burstBytes));
}

/** A pair's protection counters, if it has a window. */
export function protectCounters(pinDir: string, ifindex: number, remoteAddress: string): ProtectCounters | undefined {
  return withSteering(pinDir, (w) => w.protectCounters(ifindex, remoteAddress));
}

/** Node-wide protection counters summed over CPUs (zeros when the pins predate protection). */
export function readProtectStats(pinDir: string): ProtectStats {
  const cpus = possibleCpus();
  if (!existsSync(join(pinDir, MAPS.protectStats.name))) return sumProtectStats(() => undefined, cpus);
  return withPinnedMap(pinDir, MAPS.protectStats.name, MAPS.protectStats.keySize, MAPS.protectStats.valueSize * cpus, (m) =>
    sumProtectStats((i) => m.lookup(u32(i)), cpus),
  );
}
