/**
 * The daemon's map writer: every steering map held open for the life of the process, the
 * routes and remotes indexed in memory, and only what changed written. (The operator command
 * uses steering.ts, which opens maps per call and scans them: fine once, O(N²) for a daemon.)
 * The index is re-read from the maps by resync(), so writes by the CNI plugin (DEL clears an
 * endpoint's pairs) or the operator heal.
 */
import {
  decodeEndpoint, decodeRemote, decodeRoute, decodeRouteKey, EP_CACHE_SIZE, encodeAddrKey, encodeEndpoint, encodeRemote, encodeRoute,
  encodeRouteKey, MAPS, PairCountersLayout, setRemoteBloomBits, bloomBit, sumPairCounters, type RemotePod, type WireName,
} from './maps-layout';
import { BPF_EXIST, PinnedMap, u32 } from './pinned-map';
import { canonical } from '../net/ip';

/** A map operation the caller can tell apart from others. */
export class SteeringError extends Error {
  constructor(readonly code: 'not-local' | 'not-remote' | 'address-taken' | 'table-full' | 'no-endpoint', message: string) {
    super(message);
  }
}

/** One route pair as indexed: wire family, generation and counter index. */
export interface IndexedPair {
  ifindex: number;
  remote: RemotePod;
  wire: WireName;
  generation: number;
  pair: number;
}

/** A first packet from a local pod to a remote pod without a route (afsteer_demand). */
export interface Demand {
  ifindex: number;
  address: string;
}

const pairKey = (ifindex: number, remoteIpv6: string) => `${ifindex}|${remoteIpv6}`;

/** The steering maps of one pin dir, open. */
export class SteeringMaps {
  private readonly routes: PinnedMap;
  private readonly remotes: PinnedMap;
  private readonly endpoints: PinnedMap;
  private readonly cache: PinnedMap;
  private readonly localAddrs: PinnedMap;
  private readonly pairCounters: PinnedMap;
  private readonly demand: PinnedMap;
  private readonly bloom: PinnedMap;
  private readonly pairs = new Map<string, IndexedPair>();
  private readonly remoteByAddr = new Map<string, RemotePod>();
  private readonly usedPairIdx = new Set<number>();
  private bloomValue: Buffer = Buffer.alloc(MAPS.remoteBloom.valueSize);

  /** Opens every map under pinDir (the plugin's pins; fails when the plugin never ran). */
  constructor(readonly pinDir: string) {
    const open = (m: { name: string; keySize: number; valueSize: number }) => PinnedMap.open(pinDir, m.name, m.keySize, m.valueSize);
    this.routes = open(MAPS.routes);
    this.remotes = open(MAPS.remotes);
    this.endpoints = open(MAPS.endpoints);
    this.cache = open(MAPS.endpointCache);
    this.localAddrs = open(MAPS.localAddrs);
    this.pairCounters = open({ ...MAPS.pairCounters, valueSize: PairCountersLayout.size });
    this.demand = open(MAPS.demand);
    this.bloom = open(MAPS.remoteBloom);
    this.resync();
  }

  /** Re-reads routes, remotes and the bloom filter from the maps into the index. */
  resync(): void {
    this.pairs.clear();
    this.usedPairIdx.clear();
    for (const k of this.routes.keys()) {
      const v = this.routes.lookup(k);
      if (!v) continue;
      const key = decodeRouteKey(k);
      const r = decodeRoute(v);
      this.usedPairIdx.add(r.pair);
      // Either route of a pair indexes it (its value names both addresses): a pair left half
      // written by a crash between the two updates is still seen, and cleared or rewritten whole.
      const pk = pairKey(key.ifindex, r.remote.ipv6);
      if (key.family === 6 || !this.pairs.has(pk)) this.pairs.set(pk, { ifindex: key.ifindex, remote: r.remote, wire: r.wire, generation: r.generation, pair: r.pair });
    }
    this.remoteByAddr.clear();
    for (const k of this.remotes.keys()) {
      const v = this.remotes.lookup(k);
      if (!v) continue;
      const r = decodeRemote(v);
      this.remoteByAddr.set(r.ipv4, r);
      this.remoteByAddr.set(r.ipv6, r);
    }
    this.bloomValue = this.bloom.lookup(u32(0)) ?? Buffer.alloc(MAPS.remoteBloom.valueSize);
  }

  /** Every indexed pair. */
  listPairs(): IndexedPair[] {
    return [...this.pairs.values()];
  }

  /** The pair of (local ifindex, remote pod), if routed. */
  getPair(ifindex: number, remoteIpv6: string): IndexedPair | undefined {
    return this.pairs.get(pairKey(ifindex, canonical(remoteIpv6)));
  }

  /** Every registered remote pod. */
  listRemotes(): RemotePod[] {
    return [...new Map([...this.remoteByAddr.values()].map((r) => [r.ipv6, r])).values()];
  }

  /** The remote pod owning address, if registered. */
  remoteByAddress(address: string): RemotePod | undefined {
    return this.remoteByAddr.get(canonical(address));
  }

  /** Registers a remote pod (no-op when already registered with the same addresses). */
  registerRemote(pod: RemotePod): void {
    const r = { ipv4: canonical(pod.ipv4), ipv6: canonical(pod.ipv6) };
    const cur4 = this.remoteByAddr.get(r.ipv4), cur6 = this.remoteByAddr.get(r.ipv6);
    if (cur4 && cur6 && cur4 === cur6 && cur4.ipv4 === r.ipv4 && cur4.ipv6 === r.ipv6) return;
    for (const a of [r.ipv4, r.ipv6]) {
      if (this.localAddrs.lookup(encodeAddrKey(a))) throw new SteeringError('not-remote', `${a} belongs to a pod on this node`);
      const cur = this.remoteByAddr.get(a);
      if (cur && (cur.ipv4 !== r.ipv4 || cur.ipv6 !== r.ipv6)) throw new SteeringError('address-taken', `${a} is registered to remote pod ${cur.ipv4}/${cur.ipv6}`);
    }
    // Bloom bits before the entries: the data plane looks for demand only where a bit is set.
    const bloom = Buffer.from(this.bloomValue);
    setRemoteBloomBits(bloom, [r.ipv4, r.ipv6]);
    if (!bloom.equals(this.bloomValue)) {
      this.bloom.update(u32(0), bloom);
      this.bloomValue = bloom;
    }
    const value = encodeRemote(r);
    try {
      this.remotes.update(encodeAddrKey(r.ipv4), value, 0, MAPS.remotes.maxEntries);
      this.remotes.update(encodeAddrKey(r.ipv6), value, 0, MAPS.remotes.maxEntries);
    } catch (err) {
      this.remotes.delete(encodeAddrKey(r.ipv4));
      throw new SteeringError('table-full', `cannot register remote pod ${r.ipv4}/${r.ipv6}: ${(err as Error).message}`);
    }
    this.remoteByAddr.set(r.ipv4, r);
    this.remoteByAddr.set(r.ipv6, r);
  }

  /** Unregisters a remote pod and clears every pair toward it. */
  unregisterRemote(pod: RemotePod): void {
    const r = this.remoteByAddr.get(canonical(pod.ipv6)) ?? this.remoteByAddr.get(canonical(pod.ipv4));
    if (!r) return;
    for (const p of [...this.pairs.values()]) if (p.remote.ipv6 === r.ipv6) this.clear(p.ifindex, r.ipv6);
    this.remotes.delete(encodeAddrKey(r.ipv4));
    this.remotes.delete(encodeAddrKey(r.ipv6));
    this.remoteByAddr.delete(r.ipv4);
    this.remoteByAddr.delete(r.ipv6);
  }

  /** Sets the wire family of (local pod on ifindex, remote pod); writes only when it changes. */
  setWire(ifindex: number, remoteAddress: string, wire: WireName, generation: number): void {
    const remote = this.remoteByAddr.get(canonical(remoteAddress));
    if (!remote) throw new SteeringError('not-remote', `${remoteAddress} is not a registered remote pod`);
    const existing = this.pairs.get(pairKey(ifindex, remote.ipv6));
    if (existing && existing.wire === wire && existing.generation === generation) return;
    const epv = this.endpoints.lookup(u32(ifindex));
    if (!epv) throw new SteeringError('no-endpoint', `no local pod on host interface #${ifindex}`);
    const ep = decodeEndpoint(epv);
    if (wire !== 'native' && (!ep.ipv4 || !ep.ipv6)) throw new SteeringError('no-endpoint', `local pod on #${ifindex} is not dual-stack`);
    let pair = existing?.pair;
    if (pair === undefined) {
      pair = 0;
      while (this.usedPairIdx.has(pair)) pair++;
      if (pair >= MAPS.pairCounters.maxEntries) throw new SteeringError('table-full', `steering table is full (${MAPS.pairCounters.maxEntries} pairs on this node)`);
      this.pairCounters.update(u32(pair), Buffer.alloc(PairCountersLayout.size));
      // The bloom bits go in before the routes exist, or the routes' first packets would skip them.
      this.writeEndpointRoutes(ifindex, [remote.ipv4, remote.ipv6], 2);
    }
    const value = encodeRoute({ wire, generation, pair, remote });
    this.routes.update(encodeRouteKey(ifindex, remote.ipv6), value, 0, MAPS.routes.maxEntries);
    this.routes.update(encodeRouteKey(ifindex, remote.ipv4), value, 0, MAPS.routes.maxEntries);
    this.usedPairIdx.add(pair);
    this.pairs.set(pairKey(ifindex, remote.ipv6), { ifindex, remote, wire, generation, pair });
  }

  /** Removes a pair's routes (it goes native, without a route); false when there were none. */
  clear(ifindex: number, remoteIpv6: string): boolean {
    const p = this.pairs.get(pairKey(ifindex, canonical(remoteIpv6)));
    if (!p) return false;
    this.routes.delete(encodeRouteKey(ifindex, p.remote.ipv6));
    this.routes.delete(encodeRouteKey(ifindex, p.remote.ipv4));
    this.pairs.delete(pairKey(ifindex, p.remote.ipv6));
    this.usedPairIdx.delete(p.pair);
    this.writeEndpointRoutes(ifindex, [], 0);
    return true;
  }

  /** Packets the pair has carried so far (native, encapsulated, decapsulated; both families). */
  pairPackets(ifindex: number, remoteIpv6: string): bigint | undefined {
    const p = this.pairs.get(pairKey(ifindex, canonical(remoteIpv6)));
    const v = p && this.pairCounters.lookup(u32(p.pair));
    if (!v) return undefined;
    const c = sumPairCounters(v, 1);
    return c.nativePackets[0] + c.nativePackets[1] + c.encapPackets[0] + c.encapPackets[1] + c.decapPackets[0] + c.decapPackets[1];
  }

  /** Takes every demand entry out of afsteer_demand. */
  drainDemand(): Demand[] {
    const out: Demand[] = [];
    for (const k of this.demand.keys()) {
      const key = decodeRouteKey(k);
      out.push({ ifindex: key.ifindex, address: key.address });
      this.demand.delete(k);
    }
    return out;
  }

  /**
   * Rewrites an endpoint's route count and bloom filter from the index (plus extra addresses and
   * routes about to be written), in the hash and in its cache slot when it holds this endpoint.
   */
  private writeEndpointRoutes(ifindex: number, extra: string[], extraRoutes: number): void {
    const v = this.endpoints.lookup(u32(ifindex));
    if (!v) return;
    let bloom = 0n, routes = extraRoutes;
    for (const p of this.pairs.values()) {
      if (p.ifindex !== ifindex) continue;
      routes += 2;
      bloom |= (1n << BigInt(bloomBit(p.remote.ipv4))) | (1n << BigInt(bloomBit(p.remote.ipv6)));
    }
    for (const a of extra) bloom |= 1n << BigInt(bloomBit(a));
    const ep = { ...decodeEndpoint(v), routes, routeBloom: bloom };
    if (!this.endpoints.update(u32(ifindex), encodeEndpoint({ ...ep, ifindex }), BPF_EXIST)) return;
    const slot = u32(ifindex & (EP_CACHE_SIZE - 1));
    const c = this.cache.lookup(slot);
    if (c && decodeEndpoint(c).ifindex === ifindex) this.cache.update(slot, encodeEndpoint({ ...ep, ifindex }));
  }

  /** Closes every map. */
  close(): void {
    for (const m of [this.routes, this.remotes, this.endpoints, this.cache, this.localAddrs, this.pairCounters, this.demand, this.bloom]) m.close();
  }
}

