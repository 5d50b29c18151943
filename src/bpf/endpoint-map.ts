/** Typed access to the pinned endpoint map and the per-endpoint counter cells. */
import {
  CountersLayout,
  counterIndex,
  decodeEndpoint,
  type Endpoint,
  EP_CACHE_SIZE,
  encodeAddrKey,
  encodeEndpoint,
  MAPS,
} from './maps-layout';
import { BPF_EXIST, type PinnedMap, possibleCpus, u32, withPinnedMap } from './pinned-map';

/** Packet and byte totals (summed over CPUs) for one endpoint, family and direction. */
export interface CounterRow {
  ifindex: number;
  family: number;
  direction: number;
  packets: bigint;
  bytes: bigint;
}

const endpoints = <T>(pinDir: string, fn: (m: PinnedMap) => T) =>
  withPinnedMap(pinDir, MAPS.endpoints.name, MAPS.endpoints.keySize, MAPS.endpoints.valueSize, fn);
const cache = <T>(pinDir: string, fn: (m: PinnedMap) => T) =>
  withPinnedMap(pinDir, MAPS.endpointCache.name, MAPS.endpointCache.keySize, MAPS.endpointCache.valueSize, fn);
const localAddrs = <T>(pinDir: string, fn: (m: PinnedMap) => T) =>
  withPinnedMap(pinDir, MAPS.localAddrs.name, MAPS.localAddrs.keySize, MAPS.localAddrs.valueSize, fn);

/** Points each address at ifindex (or removes those that point there). */
function syncLocalAddrs(pinDir: string, ifindex: number, addrs: (string | undefined)[], remove: boolean): void {
  localAddrs(pinDir, (m) => {
    for (const a of addrs) {
      if (!a) continue;
      const key = encodeAddrKey(a);
      if (remove) {
        if (m.lookup(key)?.readUInt32LE(0) === ifindex) m.delete(key);
      } else {
        m.update(key, u32(ifindex), 0, MAPS.localAddrs.maxEntries);
      }
    }
  });
}

const counterStride = Math.ceil(CountersLayout.size / 8) * 8;
const counters = <T>(pinDir: string, fn: (m: PinnedMap) => T) =>
  withPinnedMap(pinDir, MAPS.counters.name, MAPS.counters.keySize, counterStride * possibleCpus(), fn);

function allEndpoints(m: PinnedMap): Map<number, Endpoint> {
  const out = new Map<number, Endpoint>();
  for (const key of m.keys()) {
    const v = m.lookup(key);
    if (v) out.set(key.readUInt32LE(0), decodeEndpoint(v));
  }
  return out;
}

/** Zeroes an endpoint slot's six counter cells. */
function zeroSlot(pinDir: string, slot: number): void {
  counters(pinDir, (m) => {
    for (let i = 0; i < 6; i++) m.update(u32(slot * 6 + i), Buffer.alloc(m.valueSize));
  });
}

/**
 * Mirrors the hash entry of ifindex into the direct-mapped cache: written when the cache slot is
 * free or already this endpoint's; on removal the slot is cleared and given to another endpoint
 * that maps to it, if any. The data plane checks the tag, so a stale slot is never used.
 */
function syncCache(pinDir: string, ifindex: number, all: Map<number, Endpoint>): void {
  const idx = ifindex & (EP_CACHE_SIZE - 1);
  cache(pinDir, (c) => {
    const cur = c.lookup(u32(idx));
    const curTag = cur ? (decodeEndpoint(cur).ifindex ?? 0) : 0;
    const mine = all.get(ifindex);
    if (mine && (curTag === 0 || curTag === ifindex || !all.has(curTag))) {
      c.update(u32(idx), encodeEndpoint({ ...mine, ifindex }));
    } else if (!mine && curTag === ifindex) {
      const heir = [...all].find(([i]) => (i & (EP_CACHE_SIZE - 1)) === idx);
      c.update(u32(idx), heir ? encodeEndpoint({ ...heir[1], ifindex: heir[0] }) : Buffer.alloc(c.valueSize));
    }
  });
}

/**
 * Writes the endpoint for host ifindex. A new endpoint gets the lowest free counter slot (its
 * cells zeroed); an existing one keeps its slot and route count. A full map is a clear error.
 * Call under the node lock (slot allocation reads then writes).
 */
export function putEndpoint(pinDir: string, ifindex: number, ep: Endpoint): void {
  const previous = endpoints(pinDir, (m) => {
    const all = allEndpoints(m);
    const old = all.get(ifindex);
    let slot = old?.slot;
    if (slot === undefined) {
      const used = new Set([...all.values()].map((e) => e.slot));
      slot = 0;
      while (used.has(slot)) slot++;
      if (slot >= MAPS.endpoints.maxEntries) throw new Error(`endpoint map is full (${MAPS.endpoints.maxEntries} endpoints on this node)`);
      zeroSlot(pinDir, slot);
    }
    const value: Endpoint = {
      ...ep,
      slot,
      ifindex,
      routes: ep.routes ?? old?.routes ?? 0,
      routeBloom: ep.routeBloom ?? old?.routeBloom ?? 0n,
    };
    m.update(u32(ifindex), encodeEndpoint(value), 0, MAPS.endpoints.maxEntries);
    all.set(ifindex, value);
    syncCache(pinDir, ifindex, all);
    return old;
  });
  // Addresses the endpoint no longer has stop pointing at it; the current ones do.
  const current = [ep.ipv4, ep.ipv6];
  const currentKeys = current.filter((a) => a !== undefined).map((a) => encodeAddrKey(a));
  const released = [previous?.ipv4, previous?.ipv6].filter((a) => a !== undefined && !currentKeys.some((k) => k.equals(encodeAddrKey(a))));
  syncLocalAddrs(pinDir, ifindex, released, true);
  syncLocalAddrs(pinDir, ifindex, current, false);
}

/** The endpoint for host ifindex, or undefined. */
export function getEndpoint(pinDir: string, ifindex: number): Endpoint | undefined {
  return endpoints(pinDir, (m) => {
    const v = m.lookup(u32(ifindex));
    return v && decodeEndpoint(v);
  });
}

/** Removes the endpoint for host ifindex and zeroes its counters; already gone is not an error. */
export function deleteEndpoint(pinDir: string, ifindex: number): void {
  const ep = getEndpoint(pinDir, ifindex);
  endpoints(pinDir, (m) => {
    m.delete(u32(ifindex));
    syncCache(pinDir, ifindex, allEndpoints(m));
  });
  if (ep?.slot !== undefined) zeroSlot(pinDir, ep.slot);
  syncLocalAddrs(pinDir, ifindex, [ep?.ipv4, ep?.ipv6], true);
}

/** Host ifindex of the local pod that owns address (from afsteer_local_addrs), or undefined. */
export function localEndpointByAddress(pinDir: string, address: string): number | undefined {
  return localAddrs(pinDir, (m) => m.lookup(encodeAddrKey(address))?.readUInt32LE(0));
}

/** Every endpoint in the map, by host ifindex. */
export function listEndpoints(pinDir: string): Map<number, Endpoint> {
  return endpoints(pinDir, allEndpoints);
}

/** Per-CPU counters summed, for one endpoint or all registered ones (cells that saw traffic). */
export function readCounters(pinDir: string, ifindex?: number): CounterRow[] {
  const cpus = possibleCpus();
  const eps = [...listEndpoints(pinDir)].filter(([i]) => ifindex === undefined || i === ifindex);
  return counters(pinDir, (m) => {
    const rows: CounterRow[] = [];
    for (const [ifx, ep] of eps) {
      for (let family = 0; family < 3; family++) {
        for (let direction = 0; direction < 2; direction++) {
          const val = m.lookup(u32(counterIndex(ep.slot ?? 0, family, direction)));
          if (!val) continue;
          let packets = 0n,
            bytes = 0n;
          for (let c = 0; c < cpus; c++) {
            packets += val.readBigUInt64LE(c * counterStride + CountersLayout.fields.packets.offset);
            bytes += val.readBigUInt64LE(c * counterStride + CountersLayout.fields.bytes.offset);
          }
          if (packets) rows.push({ ifindex: ifx, family, direction, packets, bytes });
        }
      }
    }
    return rows;
  });
}

/** Sets an endpoint's route count and bloom filter (the steering API keeps them in step with its routes). */
export function setEndpointRoutes(pinDir: string, ifindex: number, routes: number, routeBloom: bigint): void {
  endpoints(pinDir, (m) => {
    const v = m.lookup(u32(ifindex));
    if (!v) return;
    // Bits are only ever added before a route appears and removed after it is gone (see steering.ts).
    // BPF_EXIST: an endpoint deleted meanwhile is not brought back.
    if (!m.update(u32(ifindex), encodeEndpoint({ ...decodeEndpoint(v), routes, routeBloom }), BPF_EXIST)) return;
    syncCache(pinDir, ifindex, allEndpoints(m));
  });
}
