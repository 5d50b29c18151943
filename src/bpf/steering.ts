/**
 * The userspace steering API over the pinned maps: register remote pods, set or clear a pair's
 * wire family, read per-pair counters and node-wide stats. Used by the operator command now and
 * by afsteerd later. Every write is checked: unknown pods, same-node pairs and full maps are
 * clear errors, never silent corruption. Writers must be serialised (the node lock).
 *
 * A steered pair (local pod L, remote pod R) is two routes, (L, R's IPv4) and (L, R's IPv6),
 * with the same value (wire family, generation, counter index, both of R's addresses); the
 * endpoint's route count lets the data plane skip the route lookup for unsteered pods.
 */
import { deleteEndpoint, listEndpoints, localEndpointByAddress, setEndpointRoutes } from './endpoint-map';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeRemote, decodeRoute, decodeRouteKey, encodeAddrKey, encodeRemote, encodeRoute, encodeRouteKey, MAPS, PairCountersLayout,
  Stat, sumPairCounters, bloomBit, setRemoteBloomBits, type PairCounters, type RemotePod, type WireName,
} from './maps-layout';
import { possibleCpus, withPinnedMap, type PinnedMap, u32 } from './pinned-map';
import { canonical, familyOf } from '../net/ip';

const remotes = <T>(pinDir: string, fn: (m: PinnedMap) => T) => withPinnedMap(pinDir, MAPS.remotes.name, MAPS.remotes.keySize, MAPS.remotes.valueSize, fn);
const routes = <T>(pinDir: string, fn: (m: PinnedMap) => T) => withPinnedMap(pinDir, MAPS.routes.name, MAPS.routes.keySize, MAPS.routes.valueSize, fn);
const pairCounters = <T>(pinDir: string, fn: (m: PinnedMap) => T) =>
  withPinnedMap(pinDir, MAPS.pairCounters.name, MAPS.pairCounters.keySize, PairCountersLayout.size, fn);


/** Registers a remote pod (both addresses); refuses a pod that is local to this node. */
export function registerRemote(pinDir: string, pod: RemotePod): void {
  if (familyOf(pod.ipv4) !== 4 || familyOf(pod.ipv6) !== 6) throw new Error(`a remote pod needs an IPv4 and an IPv6 address, got ${pod.ipv4} ${pod.ipv6}`);
  for (const a of [pod.ipv4, pod.ipv6]) {
    if (localEndpointByAddress(pinDir, a) !== undefined) throw new Error(`${a} belongs to a pod on this node: same-node pairs are never steered`);
  }
  const value = encodeRemote({ ipv4: canonical(pod.ipv4), ipv6: canonical(pod.ipv6) });
  remotes(pinDir, (m) => {
    // Replacing an address's owner would silently re-point its pairs: refuse it.
    for (const a of [pod.ipv4, pod.ipv6]) {
      const old = m.lookup(encodeAddrKey(a));
      if (old && !old.equals(value)) {
        const o = decodeRemote(old);
        throw new Error(`${a} is already registered to remote pod ${o.ipv4}/${o.ipv6}; unregister it first`);
      }
    }
    // The bloom bits first: the data plane looks for demand only where a bit is set.
    addRemoteBloom(pinDir, [pod.ipv4, pod.ipv6]);
    m.update(encodeAddrKey(pod.ipv4), value, 0, MAPS.remotes.maxEntries);
    try {
      m.update(encodeAddrKey(pod.ipv6), value, 0, MAPS.remotes.maxEntries);
    } catch (err) {
      m.delete(encodeAddrKey(pod.ipv4));
      throw err;
    }
  });
}

/** Sets the node-wide remote bloom bits of addresses (bits are never cleared here; a stale bit only costs a lookup). */
export function addRemoteBloom(pinDir: string, addresses: string[]): void {
  if (!existsSync(join(pinDir, MAPS.remoteBloom.name))) return; // pins of an object older than on-demand negotiation
  withPinnedMap(pinDir, MAPS.remoteBloom.name, MAPS.remoteBloom.keySize, MAPS.remoteBloom.valueSize, (m) => {
    const v = m.lookup(u32(0)) ?? Buffer.alloc(MAPS.remoteBloom.valueSize);
    setRemoteBloomBits(v, addresses);
    m.update(u32(0), v);
  });
}

/** The remote pod that owns address, or undefined. */
export function lookupRemote(pinDir: string, address: string): RemotePod | undefined {
  return remotes(pinDir, (m) => {
    const v = m.lookup(encodeAddrKey(address));
    return v && decodeRemote(v);
  });
}

/** Every registered remote pod (once each). */
export function listRemotes(pinDir: string): RemotePod[] {
  return remotes(pinDir, (m) => {
    const seen = new Map<string, RemotePod>();
    for (const k of m.keys()) {
      const v = m.lookup(k);
      if (v) {
        const r = decodeRemote(v);
        seen.set(r.ipv6, r);
      }
    }
    return [...seen.values()];
  });
}

/** Forgets a remote pod (by either address) and every pair toward it; unknown is not an error. */
export function unregisterRemote(pinDir: string, address: string): boolean {
  const pod = lookupRemote(pinDir, address);
  if (!pod) return false;
  for (const p of listPairs(pinDir)) if (p.remoteIpv6 === pod.ipv6) clearSteering(pinDir, p.ifindex, pod.ipv6);
  remotes(pinDir, (m) => {
    m.delete(encodeAddrKey(pod.ipv4));
    m.delete(encodeAddrKey(pod.ipv6));
  });
  return true;
}

/** Every route as (key, value). */
function allRoutes(m: PinnedMap) {
  return m.keys().flatMap((k) => {
    const v = m.lookup(k);
    return v ? [{ key: decodeRouteKey(k), route: decodeRoute(v) }] : [];
  });
}

/**
 * Keeps the endpoint's route count and bloom filter equal to its routes (plus extra addresses
 * about to get a route: the bit must be set before the route exists, or its first packets
 * would skip the lookup).
 */
function syncRouteCount(pinDir: string, ifindex: number, extra: string[] = []): void {
  const mine = routes(pinDir, (m) => allRoutes(m).filter((r) => r.key.ifindex === ifindex));
  let bloom = 0n;
  for (const a of [...mine.map((r) => r.key.address), ...extra]) bloom |= 1n << BigInt(bloomBit(a));
  setEndpointRoutes(pinDir, ifindex, mine.length, bloom);
}

/** Sets the wire family of (local pod at host ifindex, remote pod); creates its counters. */
export function setSteering(pinDir: string, ifindex: number, remoteAddress: string, wire: WireName, generation = 0): void {
  const local = listEndpoints(pinDir).get(ifindex);
  if (!local) throw new Error(`no local pod on host interface #${ifindex}`);
  if (wire !== 'native' && (!local.ipv4 || !local.ipv6)) throw new Error(`local pod on #${ifindex} is not dual-stack; it can only stay native`);
  const remote = lookupRemote(pinDir, remoteAddress);
  if (!remote) throw new Error(`${remoteAddress} is not a registered remote pod (register it first)`);
  syncRouteCount(pinDir, ifindex, [remote.ipv4, remote.ipv6]);
  routes(pinDir, (m) => {
    const existing = m.lookup(encodeRouteKey(ifindex, remote.ipv6));
    let pair: number;
    if (existing) {
      pair = decodeRoute(existing).pair;
    } else {
      // A new pair takes the lowest free counter index; its counters start at zero.
      const used = new Set(allRoutes(m).map((r) => r.route.pair));
      pair = 0;
      while (used.has(pair)) pair++;
      if (pair >= MAPS.pairCounters.maxEntries) throw new Error(`steering table is full (${MAPS.pairCounters.maxEntries} pairs on this node)`);
      pairCounters(pinDir, (c) => c.update(u32(pair), Buffer.alloc(PairCountersLayout.size)));
    }
    const value = encodeRoute({ wire, generation, pair, remote });
    m.update(encodeRouteKey(ifindex, remote.ipv6), value, 0, MAPS.routes.maxEntries);
    try {
      m.update(encodeRouteKey(ifindex, remote.ipv4), value, 0, MAPS.routes.maxEntries);
    } catch (err) {
      if (!existing) m.delete(encodeRouteKey(ifindex, remote.ipv6));
      throw err;
    }
  });
  syncRouteCount(pinDir, ifindex);
}

/** Removes a pair's routes (it goes native); returns false if there were none. */
export function clearSteering(pinDir: string, ifindex: number, remoteAddress: string): boolean {
  const had = routes(pinDir, (m) => {
    const v = m.lookup(encodeRouteKey(ifindex, remoteAddress));
    if (!v) return false;
    const { remote } = decodeRoute(v);
    m.delete(encodeRouteKey(ifindex, remote.ipv6));
    m.delete(encodeRouteKey(ifindex, remote.ipv4));
    return true;
  });
  if (had) syncRouteCount(pinDir, ifindex);
  return had;
}

/** One pair as the maps hold it. */
export interface PairRow {
  ifindex: number;
  remoteIpv6: string;
  remoteIpv4?: string;
  wire: WireName;
  generation: number;
  counters?: PairCounters;
}

/** Every steered pair, with its counters. */
export function listPairs(pinDir: string): PairRow[] {
  const rows = routes(pinDir, (m) => allRoutes(m).filter((r) => r.key.family === 6));
  return pairCounters(pinDir, (c) =>
    rows.map(({ key, route }) => {
      const v = c.lookup(u32(route.pair));
      return {
        ifindex: key.ifindex,
        remoteIpv6: route.remote.ipv6,
        remoteIpv4: route.remote.ipv4,
        wire: route.wire,
        generation: route.generation,
        ...(v ? { counters: sumPairCounters(v, 1) } : {}),
      };
    }),
  );
}

/** Removes every pair of a local endpoint (used by DEL/GC). */
export function clearPairsOf(pinDir: string, ifindex: number): void {
  routes(pinDir, (m) => {
    for (const k of m.keys()) if (decodeRouteKey(k).ifindex === ifindex) m.delete(k);
  });
  syncRouteCount(pinDir, ifindex);
}

/** Removes a local endpoint and every pair of it (DEL, GC, and ADD over a stale entry). */
export function removeEndpoint(pinDir: string, ifindex: number): void {
  // Pins made by an object older than the steering maps have no routes to clear.
  if (existsSync(join(pinDir, MAPS.routes.name))) clearPairsOf(pinDir, ifindex);
  deleteEndpoint(pinDir, ifindex);
}

/** Node-wide event counters summed over CPUs. */
export function readStats(pinDir: string): Record<keyof typeof Stat, bigint> {
  const cpus = possibleCpus();
  return withPinnedMap(pinDir, MAPS.stats.name, 4, 8 * cpus, (m) => {
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
