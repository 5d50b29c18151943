/**
 * One-shot steering operations for the operator command, the plugin (DEL/GC/ADD clear a pod's
 * pairs) and tests: each opens a SteeringWriter on the pin dir, acts through it under the writer
 * lock, and closes it. The rules live in steering-writer.ts alone; afsteerd holds its own
 * writer open instead.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deleteEndpoint } from './endpoint-map';
import { MAPS, type PairCounters, type RemotePod, Stat, type WireName } from './maps-layout';
import { possibleCpus, u32, withPinnedMap } from './pinned-map';
import { readRoutes, SteeringWriter } from './steering-writer';

/** Runs fn with a writer on pinDir, closed afterwards. */
export function withSteering<T>(pinDir: string, fn: (w: SteeringWriter) => T): T {
  const w = SteeringWriter.open(pinDir);
  try {
    return fn(w);
  } finally {
    w.close();
  }
}

/**
 * The wire of each pair as the routes map holds it (its IPv6 route), read without the writer lock
 * and without the remotes: O(routes), not O(remotes) — what a poll watching a switch on a node
 * with thousands of remote pods can afford (listPairs reads every remote).
 */
export function readWires(pinDir: string): { ifindex: number; remote: string; wire: WireName }[] {
  return withPinnedMap(pinDir, MAPS.routes.name, MAPS.routes.keySize, MAPS.routes.valueSize, (m) =>
    readRoutes(m)
      .filter((r) => r.key.family === 6)
      .map((r) => ({ ifindex: r.key.ifindex, remote: r.key.address, wire: r.route.wire })),
  );
}

/** Registers a remote pod (both addresses); refuses a pod that is local to this node. */
export function registerRemote(pinDir: string, pod: RemotePod): void {
  withSteering(pinDir, (w) => w.registerRemote(pod));
}

/** The remote pod that owns address, or undefined. */
export function lookupRemote(pinDir: string, address: string): RemotePod | undefined {
  return withSteering(pinDir, (w) => w.remoteByAddress(address));
}

/** Every registered remote pod (once each). */
export function listRemotes(pinDir: string): RemotePod[] {
  return withSteering(pinDir, (w) => w.listRemotes());
}

/** Forgets a remote pod (by either address) and every pair toward it; unknown is not an error. */
export function unregisterRemote(pinDir: string, address: string): boolean {
  return withSteering(pinDir, (w) => w.unregisterRemote(address));
}

/** Sets the wire family of (local pod at host ifindex, remote pod); creates its counters. */
export function setSteering(pinDir: string, ifindex: number, remoteAddress: string, wire: WireName, generation = 0): void {
  withSteering(pinDir, (w) => w.setWire(ifindex, remoteAddress, wire, generation));
}

/** Removes a pair's routes (it goes native); returns false if there were none. */
export function clearSteering(pinDir: string, ifindex: number, remoteAddress: string): boolean {
  return withSteering(pinDir, (w) => w.clear(ifindex, remoteAddress));
}

/** One pair as the maps hold it. */
export interface PairRow {
  ifindex: number;
  remoteIpv6: string;
  remoteIpv4?: string;
  wire: WireName;
  generation: number;
  /** The pair's counter index (afsteer_pair_counters). */
  pair: number;
  /** This node sends both copies of the pair's packets (protected). */
  protect?: boolean;
  counters?: PairCounters;
}

/** Every steered pair, with its counters. */
export function listPairs(pinDir: string): PairRow[] {
  return withSteering(pinDir, (w) =>
    w.listPairs().map((p) => {
      const counters = w.pairCounters(p.ifindex, p.remote.ipv6);
      return {
        ifindex: p.ifindex,
        remoteIpv6: p.remote.ipv6,
        remoteIpv4: p.remote.ipv4,
        wire: p.wire,
        generation: p.generation,
        pair: p.pair,
        ...(p.protect ? { protect: true } : {}),
        ...(counters ? { counters } : {}),
      };
    }),
  );
}

/** Removes every pair of a local endpoint (DEL/GC, and ADD over a stale entry) — before the endpoint itself goes. */
export function clearPairsOf(pinDir: string, ifindex: number): void {
  // Pins made by an object older than the steering maps have no routes to clear.
  if (!existsSync(join(pinDir, MAPS.routes.name))) return;
  withSteering(pinDir, (w) => w.clearPairsOf(ifindex));
}

/** Node-wide event counters summed over CPUs. */
export function readStats(pinDir: string): Record<keyof typeof Stat, bigint> {
  const cpus = possibleCpus();
  return withPinnedMap(pinDir, MAPS.stats.name, MAPS.stats.keySize, MAPS.stats.valueSize * cpus, (m) => {
    const out = {} as Record<keyof typeof Stat, bigint>;
    for (const [name, idx] of Object.entries(Stat) as [keyof typeof Stat, number][]) {
      const v = m.lookup(u32(idx));
      let sum = 0n;
      for (let c = 0; v && c < cpus; c++) sum += v.readBigUInt64LE(c * 8);
      out[name] = sum;
    }
    return out;
  });
}

/** Removes a local endpoint and every pair of it (DEL, GC, and ADD over a stale entry). */
export function removeEndpoint(pinDir: string, ifindex: number): void {
  clearPairsOf(pinDir, ifindex);
  deleteEndpoint(pinDir, ifindex);
}
