/**
 * The userspace steering API over the pinned maps: register remote pods, set or clear a pair's
 * wire family, read per-pair counters and node-wide stats. Used by the operator command now and
 * by afsteerd later. Every write is checked: unknown pods, same-node pairs and full maps are
 * clear errors, never silent corruption.
 */
import { listEndpoints } from './endpoint-map';
import {
  decodePairKey, decodeRemote, decodeSteering, encodeAddrKey, encodePairKey, encodeRemote, encodeSteering, MAPS, PairCountersLayout,
  Stat, sumPairCounters, type Endpoint, type PairCounters, type RemotePod, type WireName,
} from './maps-layout';
import { BPF_NOEXIST, possibleCpus, withPinnedMap, type PinnedMap } from './pinned-map';
import { canonical, familyOf } from '../net/ip';

const remotes = <T>(pinDir: string, fn: (m: PinnedMap) => T) => withPinnedMap(pinDir, MAPS.remotes.name, MAPS.remotes.keySize, MAPS.remotes.valueSize, fn);
const steering = <T>(pinDir: string, fn: (m: PinnedMap) => T) => withPinnedMap(pinDir, MAPS.steering.name, MAPS.steering.keySize, MAPS.steering.valueSize, fn);
const pairCounters = <T>(pinDir: string, fn: (m: PinnedMap) => T) =>
  withPinnedMap(pinDir, MAPS.pairCounters.name, MAPS.pairCounters.keySize, PairCountersLayout.size * possibleCpus(), fn);

function localEndpointOwning(pinDir: string, address: string): [number, Endpoint] | undefined {
  const a = canonical(address);
  for (const [ifindex, ep] of listEndpoints(pinDir)) if (ep.ipv4 === a || ep.ipv6 === a) return [ifindex, ep];
  return undefined;
}

/** Registers a remote pod (both addresses); refuses a pod that is local to this node. */
export function registerRemote(pinDir: string, pod: RemotePod): void {
  if (familyOf(pod.ipv4) !== 4 || familyOf(pod.ipv6) !== 6) throw new Error(`a remote pod needs an IPv4 and an IPv6 address, got ${pod.ipv4} ${pod.ipv6}`);
  for (const a of [pod.ipv4, pod.ipv6]) {
    if (localEndpointOwning(pinDir, a)) throw new Error(`${a} belongs to a pod on this node: same-node pairs are never steered`);
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
    m.update(encodeAddrKey(pod.ipv4), value, 0, MAPS.remotes.maxEntries);
    try {
      m.update(encodeAddrKey(pod.ipv6), value, 0, MAPS.remotes.maxEntries);
    } catch (err) {
      m.delete(encodeAddrKey(pod.ipv4));
      throw err;
    }
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

/** Sets the wire family of (local pod at host ifindex, remote pod); creates its counters. */
export function setSteering(pinDir: string, ifindex: number, remoteAddress: string, wire: WireName, generation = 0): void {
  const local = listEndpoints(pinDir).get(ifindex);
  if (!local) throw new Error(`no local pod on host interface #${ifindex}`);
  if (wire !== 'native' && (!local.ipv4 || !local.ipv6)) throw new Error(`local pod on #${ifindex} is not dual-stack; it can only stay native`);
  const remote = lookupRemote(pinDir, remoteAddress);
  if (!remote) throw new Error(`${remoteAddress} is not a registered remote pod (register it first)`);
  const key = encodePairKey(ifindex, remote.ipv6);
  // Counters first, so the data plane never sees a steered pair without them.
  pairCounters(pinDir, (m) => m.update(key, Buffer.alloc(m.valueSize), BPF_NOEXIST, MAPS.pairCounters.maxEntries));
  steering(pinDir, (m) => m.update(key, encodeSteering({ wire, generation }), 0, MAPS.steering.maxEntries));
}

/** Removes a pair's steering entry (it goes native) and its counters; returns false if there was none. */
export function clearSteering(pinDir: string, ifindex: number, remoteAddress: string): boolean {
  const remote = familyOf(remoteAddress) === 6 ? { ipv6: canonical(remoteAddress) } : lookupRemote(pinDir, remoteAddress);
  if (!remote) return false;
  const key = encodePairKey(ifindex, remote.ipv6);
  const had = steering(pinDir, (m) => m.delete(key));
  pairCounters(pinDir, (m) => m.delete(key));
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
  const cpus = possibleCpus();
  const counters = pairCounters(pinDir, (m) => new Map(m.keys().map((k) => [k.toString('hex'), m.lookup(k)])));
  return steering(pinDir, (m) =>
    m.keys().flatMap((k) => {
      const v = m.lookup(k);
      if (!v) return [];
      const { ifindex, remoteIpv6 } = decodePairKey(k);
      const c = counters.get(k.toString('hex'));
      const remote = lookupRemote(pinDir, remoteIpv6);
      return [{ ifindex, remoteIpv6, ...(remote ? { remoteIpv4: remote.ipv4 } : {}), ...decodeSteering(v), ...(c ? { counters: sumPairCounters(c, cpus) } : {}) }];
    }),
  );
}

/** Removes every pair of a local endpoint (used by DEL/GC). */
export function clearPairsOf(pinDir: string, ifindex: number): void {
  for (const p of listPairs(pinDir)) if (p.ifindex === ifindex) clearSteering(pinDir, ifindex, p.remoteIpv6);
}

/** Node-wide event counters summed over CPUs. */
export function readStats(pinDir: string): Record<keyof typeof Stat, bigint> {
  const cpus = possibleCpus();
  return withPinnedMap(pinDir, MAPS.stats.name, 4, 8 * cpus, (m) => {
    const out = {} as Record<keyof typeof Stat, bigint>;
    for (const [name, idx] of Object.entries(Stat) as [keyof typeof Stat, number][]) {
      const key = Buffer.alloc(4);
      key.writeUInt32LE(idx);
      const v = m.lookup(key);
      let sum = 0n;
      for (let c = 0; v && c < cpus; c++) sum += v.readBigUInt64LE(c * 8);
      out[name] = sum;
    }
    return out;
  });
}
