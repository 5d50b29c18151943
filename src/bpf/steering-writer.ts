/**
 * The one writer of the steering maps: afsteerd holds one open for its life, `afsteer steer` and
 * the plugin's DEL/GC open one per call (steering.ts), and both keep the same rules here:
 *   - a remote pod is both its addresses, never a local pod's, never re-pointed to another pod;
 *   - bloom bits (node-wide remote bloom, the endpoint's route bloom) go in before the entries
 *     they guard, or the data plane would skip a lookup it needs;
 *   - a steered pair is two routes, (L, R's IPv4) and (L, R's IPv6), with the same value and
 *     one per-pair counter index, the lowest free one;
 *   - the endpoint's route count and bloom equal its routes.
 * The routes and remotes are indexed in memory; every change is made under the WriterLock, and a
 * writer that finds another wrote since its last change re-reads its index first, so two writers
 * never reuse each other's counter index or clear each other's bloom bits.
 * Each write of a pair's route is followed (outside the lock) by marking the pair's TCP conntrack
 * entries liberal in the writer's network namespace (net/conntrack.ts): never a node-wide setting.
 * The marking waits for the end of the current turn of the event loop and takes every pair written
 * in it at once (close() marks at once): it costs a walk of the kernel's conntrack table per
 * family, so a failover of many pairs writes all their routes (and afsteerd sends its negotiation)
 * first, and pays the walks once.
 */

import { type LiberalMarkResult, type PairAddresses, PairConntrack, type PairConntrackStats } from '../net/conntrack';
import { canonical, familyOf } from '../net/ip';
import { log } from '../util/log';
import {
  bloomBit,
  decodeEndpoint,
  decodeRemote,
  decodeRoute,
  decodeRouteKey,
  EP_CACHE_SIZE,
  encodeAddrKey,
  encodeEndpoint,
  encodeRemote,
  encodeRoute,
  encodeRouteKey,
  MAPS,
  type PairCounters,
  PairCountersLayout,
  type RemotePod,
  setRemoteBloomBits,
  sumPairCounters,
  type WireName,
} from './maps-layout';
import { BPF_EXIST, BPF_NOEXIST, PinnedMap, u32 } from './pinned-map';
import { decodeProtect, encodeDupBudget, type ProtectCounters, type ProtectionMode } from './protect-maps';
import { PinDirLock, type WriterLock } from './writer-lock';

/** Why a steering change was refused. */
export type SteeringErrorCode = 'bad-remote' | 'not-remote' | 'address-taken' | 'table-full' | 'no-endpoint' | 'not-dual-stack';

/** A refused steering change the caller can tell apart from others by its code. */
export class SteeringError extends Error {
  constructor(
    readonly code: SteeringErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** One pair as indexed: wire family, generation and counter index. */
export interface IndexedPair {
  ifindex: number;
  remote: RemotePod;
  wire: WireName;
  generation: number;
  pair: number;
  /** The route's AFSTEER_ROUTE_F_PROTECT: this node sends both copies. */
  protect?: boolean;
}

/** A first packet from a local pod to a remote pod without a route (afsteer_demand). */
export interface Demand {
  ifindex: number;
  address: string;
}

/** The map operations the writer needs (a PinnedMap, or an in-memory map in tests). */
export type MapHandle = Pick<PinnedMap, 'lookup' | 'update' | 'delete' | 'keys' | 'close'>;

/** The maps the writer reads and writes. */
export interface SteeringMapSet {
  routes: MapHandle;
  remotes: MapHandle;
  endpoints: MapHandle;
  endpointCache: MapHandle;
  localAddrs: MapHandle;
  pairCounters: MapHandle;
  /** Absent in pins made before on-demand negotiation. */
  demand?: MapHandle;
  remoteBloom?: MapHandle;
  /** Absent in pins made before protected pairs. */
  protect?: MapHandle;
  dupBudget?: MapHandle;
}

const indexKey = (ifindex: number, remoteIpv6: string) => `${ifindex}|${remoteIpv6}`;

/** Every route in the routes map, decoded (a pair has two: one per remote address family). */
export function readRoutes(routes: MapHandle): { key: ReturnType<typeof decodeRouteKey>; route: ReturnType<typeof decodeRoute> }[] {
  const out: { key: ReturnType<typeof decodeRouteKey>; route: ReturnType<typeof decodeRoute> }[] = [];
  for (const k of routes.keys()) {
    const v = routes.lookup(k);
    if (v) out.push({ key: decodeRouteKey(k), route: decodeRoute(v) });
  }
  return out;
}

/** Opens the steering maps of a pin dir (the optional ones when pinned). */
export function openSteeringMaps(pinDir: string): SteeringMapSet {
  const opened: PinnedMap[] = [];
  const open = (m: { name: string; keySize: number; valueSize: number }, optional = false): PinnedMap | undefined => {
    try {
      const h = PinnedMap.open(pinDir, m.name, m.keySize, m.valueSize);
      opened.push(h);
      return h;
    } catch (err) {
      if (optional) return undefined;
      for (const h of opened) h.close();
      throw err;
    }
  };
  return {
    routes: open(MAPS.routes)!,
    remotes: open(MAPS.remotes)!,
    endpoints: open(MAPS.endpoints)!,
    endpointCache: open(MAPS.endpointCache)!,
    localAddrs: open(MAPS.localAddrs)!,
    pairCounters: open({ ...MAPS.pairCounters, valueSize: PairCountersLayout.size })!,
    demand: open(MAPS.demand, true),
    remoteBloom: open(MAPS.remoteBloom, true),
    protect: open(MAPS.protect, true),
    dupBudget: open(MAPS.dupBudget, true),
  };
}

/** The steering maps of one node, with their index and rules. */
export class SteeringWriter {
  private readonly pairs = new Map<string, IndexedPair>();
  private readonly remoteByAddr = new Map<string, RemotePod>();
  private readonly usedPairIdx = new Set<number>();
  private bloomValue: Buffer = Buffer.alloc(MAPS.remoteBloom.valueSize);
  /** Times the index was re-read because another writer changed the maps. */
  resyncsForOthers = 0;

  /** The last conntrack marking (tests, `afsteer steer`). */
  lastConntrackMark?: LiberalMarkResult;
  /** Pairs written since the last marking, and the turn's-end callback that will mark them. */
  private pendingMarks: PairAddresses[] = [];
  private markSoon?: NodeJS.Immediate;

  /** A writer over open maps and a lock; reads the index at once. conntrack: marks each written pair's flows liberal (none: no marking). */
  constructor(
    private readonly maps: SteeringMapSet,
    private readonly lock: WriterLock,
    private readonly conntrack?: PairConntrack,
  ) {
    this.lock.hold(() => this.readIndex(), false);
  }

  /**
   * Opens the maps and the lock of a pin dir (fails when the plugin never pinned them), and a
   * ctnetlink socket in this thread's network namespace — the one whose conntrack sees the pods'
   * packets (where conntrack is not available, nothing is marked: nothing can be INVALID).
   */
  static open(pinDir: string): SteeringWriter {
    const maps = openSteeringMaps(pinDir);
    let lock: PinDirLock;
    try {
      lock = new PinDirLock(pinDir);
    } catch (err) {
      closeAll(maps);
      throw new Error(`cannot open the steering writer lock of ${pinDir}`, { cause: err });
    }
    const ct = PairConntrack.open();
    if (ct.error) log.debug('conntrack marking off', { error: ct.error.message, cause: String((ct.error.cause as Error)?.message) });
    return new SteeringWriter(maps, lock, ct.conntrack);
  }

  /** Totals of the per-flow conntrack marking (undefined when it is off). */
  conntrackStats(): PairConntrackStats | undefined {
    return this.conntrack?.stats;
  }

  /** Re-reads routes, remotes and the bloom filter from the maps into the index. */
  resync(): void {
    this.lock.hold(() => this.readIndex(), false);
  }

  /** Re-reads the index only when another writer changed the maps since this one last looked. */
  refresh(): boolean {
    return this.lock.hold((changed) => {
      if (changed) this.readIndex();
      return changed;
    }, false);
  }

  /** Runs a change under the lock, on an index that reflects every other writer's changes. */
  private change<T>(fn: () => T): T {
    return this.lock.hold((changed) => {
      if (changed) {
        this.resyncsForOthers++;
        this.readIndex();
      }
      return fn();
    });
  }

  private readIndex(): void {
    this.pairs.clear();
    this.usedPairIdx.clear();
    for (const { key, route: r } of readRoutes(this.maps.routes)) {
      this.usedPairIdx.add(r.pair);
      // Either route of a pair indexes it (its value names both addresses): a pair left half
      // written by a crash between the two updates is still seen, and cleared or rewritten whole.
      const pk = indexKey(key.ifindex, r.remote.ipv6);
      if (key.family === 6 || !this.pairs.has(pk))
        this.pairs.set(pk, {
          ifindex: key.ifindex,
          remote: r.remote,
          wire: r.wire,
          generation: r.generation,
          pair: r.pair,
          ...(r.protect ? { protect: true } : {}),
        });
    }
    this.remoteByAddr.clear();
    for (const k of this.maps.remotes.keys()) {
      const v = this.maps.remotes.lookup(k);
      if (!v) continue;
      const r = decodeRemote(v);
      this.remoteByAddr.set(r.ipv4, r);
      this.remoteByAddr.set(r.ipv6, r);
    }
    this.bloomValue = this.maps.remoteBloom?.lookup(u32(0)) ?? Buffer.alloc(MAPS.remoteBloom.valueSize);
  }

  // ---- reads (from the index) ------------------------------------------------------------------

  /** Every indexed pair. */
  listPairs(): IndexedPair[] {
    return [...this.pairs.values()];
  }

  /** The pair of (local ifindex, remote pod by either address), if routed. */
  getPair(ifindex: number, remoteAddress: string): IndexedPair | undefined {
    const a = canonical(remoteAddress);
    return this.pairs.get(indexKey(ifindex, this.remoteByAddr.get(a)?.ipv6 ?? a));
  }

  /** Every registered remote pod (once each). */
  listRemotes(): RemotePod[] {
    return [...new Map([...this.remoteByAddr.values()].map((r) => [r.ipv6, r])).values()];
  }

  /** The remote pod owning address, if registered. */
  remoteByAddress(address: string): RemotePod | undefined {
    return this.remoteByAddr.get(canonical(address));
  }

  /** A pair's counters (read from the map), if it is routed. */
  pairCounters(ifindex: number, remoteAddress: string): PairCounters | undefined {
    const p = this.getPair(ifindex, remoteAddress);
    const v = p && this.maps.pairCounters.lookup(u32(p.pair));
    return v ? sumPairCounters(v, 1) : undefined;
  }

  /** Packets the pair has carried so far (native, encapsulated, decapsulated; both families). */
  pairPackets(ifindex: number, remoteAddress: string): bigint | undefined {
    const c = this.pairCounters(ifindex, remoteAddress);
    if (!c) return undefined;
    return c.nativePackets[0] + c.nativePackets[1] + c.encapPackets[0] + c.encapPackets[1] + c.decapPackets[0] + c.decapPackets[1];
  }

  /** Takes every demand entry out of afsteer_demand. */
  drainDemand(): Demand[] {
    const out: Demand[] = [];
    const m = this.maps.demand;
    if (!m) return out;
    for (const k of m.keys()) {
      const key = decodeRouteKey(k);
      out.push({ ifindex: key.ifindex, address: key.address });
      m.delete(k);
    }
    return out;
  }

  // ---- changes (under the lock) ----------------------------------------------------------------

  /** Registers a remote pod (no-op when already registered with the same addresses). */
  registerRemote(pod: RemotePod): void {
    if (familyOf(pod.ipv4) !== 4 || familyOf(pod.ipv6) !== 6)
      throw new SteeringError('bad-remote', `a remote pod needs an IPv4 and an IPv6 address, got ${pod.ipv4} ${pod.ipv6}`);
    const r = { ipv4: canonical(pod.ipv4), ipv6: canonical(pod.ipv6) };
    this.change(() => {
      const cur4 = this.remoteByAddr.get(r.ipv4),
        cur6 = this.remoteByAddr.get(r.ipv6);
      if (cur4 && cur6 && cur4 === cur6 && cur4.ipv4 === r.ipv4 && cur4.ipv6 === r.ipv6) return;
      for (const a of [r.ipv4, r.ipv6]) {
        if (this.maps.localAddrs.lookup(encodeAddrKey(a)))
          throw new SteeringError('not-remote', `${a} belongs to a pod on this node: same-node pairs are never steered`);
        // Replacing an address's owner would silently re-point its pairs: refuse it.
        const cur = this.remoteByAddr.get(a);
        if (cur && (cur.ipv4 !== r.ipv4 || cur.ipv6 !== r.ipv6))
          throw new SteeringError('address-taken', `${a} is already registered to remote pod ${cur.ipv4}/${cur.ipv6}; unregister it first`);
      }
      // Bloom bits before the entries: the data plane looks for demand only where a bit is set.
      if (this.maps.remoteBloom) {
        const bloom = Buffer.from(this.bloomValue);
        setRemoteBloomBits(bloom, [r.ipv4, r.ipv6]);
        if (!bloom.equals(this.bloomValue)) {
          this.maps.remoteBloom.update(u32(0), bloom);
          this.bloomValue = bloom;
        }
      }
      const value = encodeRemote(r);
      try {
        this.maps.remotes.update(encodeAddrKey(r.ipv4), value, 0, MAPS.remotes.maxEntries);
        this.maps.remotes.update(encodeAddrKey(r.ipv6), value, 0, MAPS.remotes.maxEntries);
      } catch (err) {
        this.maps.remotes.delete(encodeAddrKey(r.ipv4));
        throw new SteeringError('table-full', `cannot register remote pod ${r.ipv4}/${r.ipv6}: ${(err as Error).message}`, { cause: err });
      }
      this.remoteByAddr.set(r.ipv4, r);
      this.remoteByAddr.set(r.ipv6, r);
    });
  }

  /** Unregisters a remote pod (by either address) and clears every pair toward it; false when unknown. */
  unregisterRemote(address: string): boolean {
    return this.change(() => {
      const r = this.remoteByAddr.get(canonical(address));
      if (!r) return false;
      for (const p of [...this.pairs.values()]) if (p.remote.ipv6 === r.ipv6) this.clearIndexed(p);
      this.maps.remotes.delete(encodeAddrKey(r.ipv4));
      this.maps.remotes.delete(encodeAddrKey(r.ipv6));
      this.remoteByAddr.delete(r.ipv4);
      this.remoteByAddr.delete(r.ipv6);
      return true;
    });
  }

  /**
   * Sets the wire family of (local pod on ifindex, remote pod by either address); writes only when
   * it changes, then has the pair's TCP conntrack entries marked liberal at the end of this turn
   * of the event loop (see net/conntrack.ts, markPending).
   */
  setWire(ifindex: number, remoteAddress: string, wire: WireName, generation: number): void {
    const written = this.writeWire(ifindex, remoteAddress, wire, generation);
    if (written && this.conntrack) {
      this.pendingMarks.push(written);
      this.markSoon ??= setImmediate(() => this.markPending());
    }
  }

  /** Marks the TCP conntrack entries of every pair written since the last marking, together; never throws (a failure is counted and logged). */
  markPending(): void {
    if (this.markSoon) clearImmediate(this.markSoon);
    this.markSoon = undefined;
    const pairs = this.pendingMarks.splice(0);
    if (!pairs.length || !this.conntrack) return;
    const r = this.conntrack.markPairs(pairs);
    if (r) this.lastConntrackMark = r;
    else
      log.warn('conntrack entries of steered pairs not marked liberal', {
        remotes: pairs.map((p) => p.remote.ipv6),
        error: this.conntrack.lastError?.message,
      });
  }

  /** The route write of setWire, under the lock; the pair's addresses when something was written. */
  private writeWire(ifindex: number, remoteAddress: string, wire: WireName, generation: number): PairAddresses | undefined {
    return this.change(() => {
      const epv = this.maps.endpoints.lookup(u32(ifindex));
      if (!epv) throw new SteeringError('no-endpoint', `no local pod on host interface #${ifindex}`);
      const ep = decodeEndpoint(epv);
      if (wire !== 'native' && (!ep.ipv4 || !ep.ipv6))
        throw new SteeringError('not-dual-stack', `local pod on #${ifindex} is not dual-stack; it can only stay native`);
      const remote = this.remoteByAddr.get(canonical(remoteAddress));
      if (!remote) throw new SteeringError('not-remote', `${remoteAddress} is not a registered remote pod (register it first)`);
      const existing = this.pairs.get(indexKey(ifindex, remote.ipv6));
      if (existing && existing.wire === wire && existing.generation === generation) return undefined;
      let pair = existing?.pair;
      if (pair === undefined) {
        pair = lowestFree(this.usedPairIdx);
        if (pair >= MAPS.pairCounters.maxEntries)
          throw new SteeringError('table-full', `steering table is full (${MAPS.pairCounters.maxEntries} pairs on this node)`);
        // A new pair's counters start at zero.
        this.maps.pairCounters.update(u32(pair), Buffer.alloc(PairCountersLayout.size));
        // The bloom bits go in before the routes exist, or the routes' first packets would skip them.
        this.writeEndpointRoutes(ifindex, [remote.ipv4, remote.ipv6], 2);
      }
      const protect = existing?.protect === true;
      const value = encodeRoute({ wire, generation, pair, remote, protect });
      this.maps.routes.update(encodeRouteKey(ifindex, remote.ipv6), value, 0, MAPS.routes.maxEntries);
      try {
        this.maps.routes.update(encodeRouteKey(ifindex, remote.ipv4), value, 0, MAPS.routes.maxEntries);
      } catch (err) {
        if (!existing) {
          this.maps.routes.delete(encodeRouteKey(ifindex, remote.ipv6));
          this.writeEndpointRoutes(ifindex, [], 0);
        }
        throw err;
      }
      this.usedPairIdx.add(pair);
      this.pairs.set(indexKey(ifindex, remote.ipv6), { ifindex, remote, wire, generation, pair, ...(protect ? { protect: true } : {}) });
      return { local: { ...(ep.ipv4 ? { ipv4: ep.ipv4 } : {}), ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}) }, remote };
    });
  }

  /**
   * Sets what this node does for a routed pair's protection: 'send' duplicates its packets (the
   * route's protect flag) and deduplicates, 'dedup' only deduplicates what arrives, 'off' neither
   * (its window is removed: copies in flight are all delivered). The window (afsteer_protect) is
   * created before the flag is set, so a protected packet never lacks its sequence number.
   * False when the pair has no route, or the pins predate protection.
   */
  setProtection(ifindex: number, remoteAddress: string, mode: ProtectionMode): boolean {
    return this.change(() => {
      const p = this.getPair(ifindex, remoteAddress);
      const m = this.maps.protect;
      if (!p || !m) return false;
      const key = u32(p.pair);
      if (mode !== 'off' && !m.lookup(key)) m.update(key, Buffer.alloc(MAPS.protect.valueSize), BPF_NOEXIST, MAPS.protect.maxEntries);
      const send = mode === 'send';
      if ((p.protect === true) !== send) {
        const value = encodeRoute({ wire: p.wire, generation: p.generation, pair: p.pair, remote: p.remote, protect: send });
        this.maps.routes.update(encodeRouteKey(ifindex, p.remote.ipv6), value, BPF_EXIST);
        this.maps.routes.update(encodeRouteKey(ifindex, p.remote.ipv4), value, BPF_EXIST);
        const next: IndexedPair = { ...p };
        if (send) next.protect = true;
        else delete next.protect;
        this.pairs.set(indexKey(ifindex, p.remote.ipv6), next);
      }
      if (mode === 'off') m.delete(key);
      return true;
    });
  }

  /** A pair's protection counters, when it has a window. */
  protectCounters(ifindex: number, remoteAddress: string): ProtectCounters | undefined {
    const p = this.getPair(ifindex, remoteAddress);
    const v = p && this.maps.protect?.lookup(u32(p.pair));
    return v ? decodeProtect(v) : undefined;
  }

  /** Sets the node-wide budget of duplicated bytes (rate bytes/s, burst bytes; 0 allows none); false when the pins predate it. */
  setDupBudget(rateBytesPerSec: number, burstBytes: number): boolean {
    return this.change(() => {
      if (!this.maps.dupBudget) return false;
      this.maps.dupBudget.update(u32(0), encodeDupBudget(rateBytesPerSec, burstBytes));
      return true;
    });
  }

  /** Removes a pair's routes (it goes native, without a route); false when there were none. */
  clear(ifindex: number, remoteAddress: string): boolean {
    return this.change(() => {
      const p = this.getPair(ifindex, remoteAddress);
      if (!p) return false;
      this.clearIndexed(p);
      return true;
    });
  }

  /** Removes every route of a local endpoint (DEL, GC, ADD over a stale entry), indexed or not. */
  clearPairsOf(ifindex: number): void {
    this.change(() => {
      for (const k of this.maps.routes.keys()) if (decodeRouteKey(k).ifindex === ifindex) this.maps.routes.delete(k);
      for (const p of [...this.pairs.values()]) {
        if (p.ifindex !== ifindex) continue;
        this.pairs.delete(indexKey(ifindex, p.remote.ipv6));
        this.usedPairIdx.delete(p.pair);
        this.maps.protect?.delete(u32(p.pair));
      }
      this.writeEndpointRoutes(ifindex, [], 0);
    });
  }

  private clearIndexed(p: IndexedPair): void {
    this.maps.routes.delete(encodeRouteKey(p.ifindex, p.remote.ipv6));
    this.maps.routes.delete(encodeRouteKey(p.ifindex, p.remote.ipv4));
    this.pairs.delete(indexKey(p.ifindex, p.remote.ipv6));
    this.usedPairIdx.delete(p.pair);
    this.maps.protect?.delete(u32(p.pair));
    this.writeEndpointRoutes(p.ifindex, [], 0);
  }

  /**
   * Rewrites an endpoint's route count and bloom filter from the index (plus extra addresses and
   * routes about to be written), in the hash and in its cache slot when it holds this endpoint.
   */
  private writeEndpointRoutes(ifindex: number, extra: string[], extraRoutes: number): void {
    const v = this.maps.endpoints.lookup(u32(ifindex));
    if (!v) return;
    let bloom = 0n,
      routes = extraRoutes;
    for (const p of this.pairs.values()) {
      if (p.ifindex !== ifindex) continue;
      routes += 2;
      bloom |= (1n << BigInt(bloomBit(p.remote.ipv4))) | (1n << BigInt(bloomBit(p.remote.ipv6)));
    }
    for (const a of extra) bloom |= 1n << BigInt(bloomBit(a));
    const ep = { ...decodeEndpoint(v), routes, routeBloom: bloom };
    if (!this.maps.endpoints.update(u32(ifindex), encodeEndpoint({ ...ep, ifindex }), BPF_EXIST)) return;
    const slot = u32(ifindex & (EP_CACHE_SIZE - 1));
    const c = this.maps.endpointCache.lookup(slot);
    if (c && decodeEndpoint(c).ifindex === ifindex) this.maps.endpointCache.update(slot, encodeEndpoint({ ...ep, ifindex }));
  }

  /** Marks what is pending, then closes every map, the lock and the conntrack socket. */
  close(): void {
    this.markPending();
    closeAll(this.maps);
    this.lock.close();
    this.conntrack?.close();
  }
}

/** The lowest number not in used (a new pair's counter index). */
export function lowestFree(used: ReadonlySet<number>): number {
  let n = 0;
  while (used.has(n)) n++;
  return n;
}

function closeAll(maps: SteeringMapSet): void {
  for (const m of Object.values(maps)) (m as MapHandle | undefined)?.close();
}
