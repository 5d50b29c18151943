/**
 * In-memory stand-ins for the pinned steering maps and the writer lock, so the real
 * SteeringWriter (and afsteerd over it) runs in a unit test without root. Update flags and
 * capacities behave as the kernel's hash maps do.
 */

import { encodeAddrKey, encodeEndpoint, encodeRouteKey, MAPS, type RemotePod } from '../../src/bpf/maps-layout';
import { BPF_EXIST, BPF_NOEXIST, u32 } from '../../src/bpf/pinned-map';
import type { MapHandle, SteeringMapSet } from '../../src/bpf/steering-writer';
import type { WriterLock } from '../../src/bpf/writer-lock';

/** One map in memory. */
export class MemoryMap implements MapHandle {
  private readonly m = new Map<string, Buffer>();
  /** Updates and deletes so far (tests assert that nothing was written). */
  writes = 0;

  constructor(
    readonly name: string,
    private readonly maxEntries: number,
  ) {}

  lookup(key: Buffer): Buffer | undefined {
    const v = this.m.get(key.toString('hex'));
    return v && Buffer.from(v);
  }

  update(key: Buffer, value: Buffer, flags = 0, capacity?: number): boolean {
    const k = key.toString('hex');
    const has = this.m.has(k);
    if (flags === BPF_NOEXIST && has) return false;
    if (flags === BPF_EXIST && !has) return false;
    if (!has && this.m.size >= this.maxEntries) throw new Error(`BPF map ${this.name} is full${capacity ? ` (${capacity} entries)` : ''}`);
    this.m.set(k, Buffer.from(value));
    this.writes++;
    return true;
  }

  delete(key: Buffer): boolean {
    const had = this.m.delete(key.toString('hex'));
    if (had) this.writes++;
    return had;
  }

  keys(): Buffer[] {
    return [...this.m.keys()].map((k) => Buffer.from(k, 'hex'));
  }

  close(): void {}

  /** Number of entries. */
  get size(): number {
    return this.m.size;
  }
}

/** A node's steering maps in memory. */
export type MemoryMapSet = { [K in keyof Required<SteeringMapSet>]: MemoryMap };

/** Fresh, empty steering maps with the real capacities. */
export function memoryMaps(): MemoryMapSet {
  const mk = (m: { name: string; maxEntries: number }) => new MemoryMap(m.name, m.maxEntries);
  const maps = {
    routes: mk(MAPS.routes),
    remotes: mk(MAPS.remotes),
    endpoints: mk(MAPS.endpoints),
    endpointCache: mk(MAPS.endpointCache),
    localAddrs: mk(MAPS.localAddrs),
    pairCounters: mk(MAPS.pairCounters),
    demand: mk(MAPS.demand),
    remoteBloom: mk(MAPS.remoteBloom),
    protect: mk(MAPS.protect),
    dupBudget: mk(MAPS.dupBudget),
  };
  // An array map always holds its entries (zeroed).
  maps.remoteBloom.update(u32(0), Buffer.alloc(MAPS.remoteBloom.valueSize));
  maps.dupBudget.update(u32(0), Buffer.alloc(MAPS.dupBudget.valueSize));
  return maps;
}

/** Puts a local pod's endpoint entry (and its addresses) in the maps, as the plugin's ADD does. */
export function addMemoryEndpoint(maps: MemoryMapSet, ifindex: number, pod: RemotePod, slot = 0): void {
  maps.endpoints.update(u32(ifindex), encodeEndpoint({ ...pod, podIfindex: 2, slot, ifindex, routes: 0, routeBloom: 0n }));
  const v = Buffer.alloc(4);
  v.writeUInt32LE(ifindex);
  maps.localAddrs.update(encodeAddrKey(pod.ipv4), v);
  maps.localAddrs.update(encodeAddrKey(pod.ipv6), v);
}

/** Records a first packet from the pod on ifindex to address, as the data plane does. */
export function pushMemoryDemand(maps: MemoryMapSet, ifindex: number, address: string): void {
  maps.demand.update(encodeRouteKey(ifindex, address), Buffer.alloc(MAPS.demand.valueSize));
}

/** The shared state of one node's writer lock (the generation counter). */
export interface MemoryLockState {
  gen: bigint;
  held: boolean;
}

/** A writer lock over shared in-memory state: what PinDirLock does with flock and a pinned counter. */
export class MemoryLock implements WriterLock {
  private seen: bigint | undefined;

  constructor(private readonly state: MemoryLockState = { gen: 0n, held: false }) {}

  hold<T>(fn: (changedByOthers: boolean) => T, writes = true): T {
    if (this.state.held) throw new Error('writer lock taken twice (re-entrant use)');
    this.state.held = true;
    try {
      try {
        return fn(this.seen !== this.state.gen);
      } finally {
        if (writes) this.state.gen++;
        this.seen = this.state.gen;
      }
    } finally {
      this.state.held = false;
    }
  }

  close(): void {}
}
