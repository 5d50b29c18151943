/**
 * TypeScript mirror of bpf/include/afsteer_maps.h: sizes, field offsets and codecs of every
 * struct shared with the kernel. test/integration/bpf/btf-layout.test.ts checks it against BTF.
 */
import { addressBytes, bytesToAddress } from '../net/ip';

/** Offset and size in bytes of one struct field. */
export interface FieldLayout {
  offset: number;
  size: number;
}

/** A C struct's layout: total size and its fields by name. */
export interface StructLayout {
  name: string;
  size: number;
  fields: Record<string, FieldLayout>;
}

/** struct afsteer_endpoint */
export const EndpointLayout = {
  name: 'afsteer_endpoint',
  size: 48,
  fields: {
    ipv4: { offset: 0, size: 4 },
    ipv6: { offset: 4, size: 16 },
    flags: { offset: 20, size: 4 },
    pod_ifindex: { offset: 24, size: 4 },
    slot: { offset: 28, size: 4 },
    ifindex: { offset: 32, size: 4 },
    routes: { offset: 36, size: 4 },
    route_bloom: { offset: 40, size: 8 },
  },
} as const satisfies StructLayout;

/** AFSTEER_EP_CACHE_SIZE */
export const EP_CACHE_SIZE = 4096;

/** struct afsteer_counters */
export const CountersLayout = {
  name: 'afsteer_counters',
  size: 16,
  fields: {
    packets: { offset: 0, size: 8 },
    bytes: { offset: 8, size: 8 },
  },
} as const satisfies StructLayout;

/** struct afsteer_addr_key */
export const AddrKeyLayout = {
  name: 'afsteer_addr_key',
  size: 20,
  fields: {
    family: { offset: 0, size: 1 },
    pad: { offset: 1, size: 3 },
    addr: { offset: 4, size: 16 },
  },
} as const satisfies StructLayout;

/** struct afsteer_remote */
export const RemoteLayout = {
  name: 'afsteer_remote',
  size: 24,
  fields: {
    ipv4: { offset: 0, size: 4 },
    ipv6: { offset: 4, size: 16 },
    flags: { offset: 20, size: 4 },
  },
} as const satisfies StructLayout;

/** struct afsteer_local_addr */
export const LocalAddrLayout = {
  name: 'afsteer_local_addr',
  size: 4,
  fields: { ifindex: { offset: 0, size: 4 } },
} as const satisfies StructLayout;

/** struct afsteer_route_key */
export const RouteKeyLayout = {
  name: 'afsteer_route_key',
  size: 24,
  fields: {
    ifindex: { offset: 0, size: 4 },
    family: { offset: 4, size: 1 },
    pad: { offset: 5, size: 3 },
    addr: { offset: 8, size: 16 },
  },
} as const satisfies StructLayout;

/** struct afsteer_route */
export const RouteLayout = {
  name: 'afsteer_route',
  size: 32,
  fields: {
    wire: { offset: 0, size: 1 },
    flags: { offset: 1, size: 1 },
    pad: { offset: 2, size: 2 },
    generation: { offset: 4, size: 4 },
    pair: { offset: 8, size: 4 },
    remote_ipv4: { offset: 12, size: 4 },
    remote_ipv6: { offset: 16, size: 16 },
  },
} as const satisfies StructLayout;

/** struct afsteer_pair_counters ([0] = IPv4 application packets, [1] = IPv6) */
export const PairCountersLayout = {
  name: 'afsteer_pair_counters',
  size: 128,
  fields: {
    native_packets: { offset: 0, size: 16 },
    native_bytes: { offset: 16, size: 16 },
    encap_packets: { offset: 32, size: 16 },
    encap_bytes: { offset: 48, size: 16 },
    decap_packets: { offset: 64, size: 16 },
    decap_bytes: { offset: 80, size: 16 },
    drop_spoof: { offset: 96, size: 8 },
    drop_mismatch: { offset: 104, size: 8 },
    encap_fail: { offset: 112, size: 8 },
    decap_fail: { offset: 120, size: 8 },
  },
} as const satisfies StructLayout;

/** struct afsteer_pair_seen: last packet sent and received per wire family ([0] over IPv4, [1] over IPv6), bpf_ktime_get_ns (0: never) */
export const PairSeenLayout = {
  name: 'afsteer_pair_seen',
  size: 32,
  fields: {
    sent_ns: { offset: 0, size: 16 },
    received_ns: { offset: 16, size: 16 },
  },
} as const satisfies StructLayout;

/** struct afsteer_remote_bloom (AFSTEER_REMOTE_BLOOM_WORDS = 16) */
export const RemoteBloomLayout = {
  name: 'afsteer_remote_bloom',
  size: 128,
  fields: {
    bits: { offset: 0, size: 128 },
  },
} as const satisfies StructLayout;

/** struct afsteer_demand */
export const DemandLayout = {
  name: 'afsteer_demand',
  size: 8,
  fields: {
    first_ns: { offset: 0, size: 8 },
  },
} as const satisfies StructLayout;

/** struct afsteer_protect (AFSTEER_DEDUP_WORDS = 32) */
export const ProtectLayout = {
  name: 'afsteer_protect',
  size: 328,
  fields: {
    lock: { offset: 0, size: 4 },
    tx_seq: { offset: 4, size: 4 },
    rx_top: { offset: 8, size: 4 },
    rx_valid: { offset: 12, size: 4 },
    rx_last_ns: { offset: 16, size: 8 },
    rx_bits: { offset: 24, size: 256 },
    rx_first: { offset: 280, size: 8 },
    rx_dup: { offset: 288, size: 8 },
    rx_old: { offset: 296, size: 8 },
    dup_packets: { offset: 304, size: 8 },
    dup_bytes: { offset: 312, size: 8 },
    dup_capped: { offset: 320, size: 8 },
  },
} as const satisfies StructLayout;

/** struct afsteer_dup_budget */
export const DupBudgetLayout = {
  name: 'afsteer_dup_budget',
  size: 40,
  fields: {
    lock: { offset: 0, size: 4 },
    pad: { offset: 4, size: 4 },
    rate: { offset: 8, size: 8 },
    burst: { offset: 16, size: 8 },
    tokens: { offset: 24, size: 8 },
    last_ns: { offset: 32, size: 8 },
  },
} as const satisfies StructLayout;

/** Every mirrored struct, for the BTF check. */
export const ALL_LAYOUTS: readonly StructLayout[] = [
  EndpointLayout,
  CountersLayout,
  AddrKeyLayout,
  RemoteLayout,
  LocalAddrLayout,
  RouteKeyLayout,
  RouteLayout,
  PairCountersLayout,
  PairSeenLayout,
  RemoteBloomLayout,
  DemandLayout,
  ProtectLayout,
  DupBudgetLayout,
];

/** Map names and capacities (AFSTEER_MAX_* in the header). */
export const MAPS = {
  endpoints: { name: 'afsteer_endpoints', keySize: 4, valueSize: EndpointLayout.size, maxEntries: 1024 },
  endpointCache: { name: 'afsteer_endpoint_cache', keySize: 4, valueSize: EndpointLayout.size, maxEntries: 4096 },
  counters: { name: 'afsteer_counters', keySize: 4, valueSize: CountersLayout.size, maxEntries: 1024 * 3 * 2 },
  localAddrs: { name: 'afsteer_local_addrs', keySize: AddrKeyLayout.size, valueSize: LocalAddrLayout.size, maxEntries: 2048 },
  remotes: { name: 'afsteer_remotes', keySize: AddrKeyLayout.size, valueSize: RemoteLayout.size, maxEntries: 65536 * 2 },
  routes: { name: 'afsteer_routes', keySize: RouteKeyLayout.size, valueSize: RouteLayout.size, maxEntries: 65536 * 2 },
  pairCounters: { name: 'afsteer_pair_counters', keySize: 4, valueSize: PairCountersLayout.size, maxEntries: 65536 },
  /** BPF_F_MMAPABLE: read in place (src/bpf/pair-seen.ts). */
  pairSeen: { name: 'afsteer_pair_seen', keySize: 4, valueSize: PairSeenLayout.size, maxEntries: 65536 },
  stats: { name: 'afsteer_stats', keySize: 4, valueSize: 8, maxEntries: 8 },
  remoteBloom: { name: 'afsteer_remote_bloom', keySize: 4, valueSize: RemoteBloomLayout.size, maxEntries: 1 },
  demand: { name: 'afsteer_demand', keySize: RouteKeyLayout.size, valueSize: DemandLayout.size, maxEntries: 4096 },
  protect: { name: 'afsteer_protect', keySize: 4, valueSize: ProtectLayout.size, maxEntries: 8192 },
  dupBudget: { name: 'afsteer_dup_budget', keySize: 4, valueSize: DupBudgetLayout.size, maxEntries: 1 },
  protectStats: { name: 'afsteer_protect_stats', keySize: 4, valueSize: 8, maxEntries: 8 },
} as const;

/** AFSTEER_ROUTE_F_* (afsteer_route.flags) */
export const RouteFlags = { protect: 1 } as const;

/** enum afsteer_protect_stat, by name. */
export const ProtectStat = { dup: 0, dupBytes: 1, dupCapped: 2, dupFail: 3, rxFirst: 4, rxDup: 5, rxOld: 6, rxNoState: 7 } as const;

/** enum afsteer_wire */
export const Wire = { native: 0, ipv4: 4, ipv6: 6 } as const;
export type WireName = keyof typeof Wire;

/** enum afsteer_stat, by name. */
export const Stat = { encap: 0, decap: 1, dropSpoof: 2, dropMismatch: 3, encapFail: 4, decapFail: 5, srcForeign: 6 } as const;

/** enum afsteer_family */
export const Family = { ipv4: 0, ipv6: 1, other: 2 } as const;
/** enum afsteer_direction */
export const Direction = { fromPod: 0, toPod: 1 } as const;
/** AFSTEER_EP_F_* */
export const EndpointFlags = { ipv4: 1, ipv6: 2, inPod: 4 } as const;

/** AFSTEER_EP_KEY_POD: the bit that marks an endpoint key as an in-pod attachment's (AFSTEER_EP_KEY_POD | id), never a host ifindex. */
export const EP_KEY_POD = 0x80000000;
/** AFSTEER_EP_POD_ID_MAX: in-pod attachment ids are 1..this (the classid minor of the attachment's tc filters). */
export const EP_POD_ID_MAX = 0xffff;

/** The endpoint key of in-pod attachment id. */
export function podEndpointKey(id: number): number {
  return (EP_KEY_POD | id) >>> 0;
}

/** The in-pod attachment id of an endpoint key, or undefined for a host veth's ifindex. */
export function podAttachmentId(key: number): number | undefined {
  return key >= EP_KEY_POD ? key - EP_KEY_POD : undefined;
}

/** A local endpoint as the BPF map holds it. */
export interface Endpoint {
  ipv4?: string;
  ipv6?: string;
  podIfindex: number;
  /** The programs run inside the pod's namespace, on its own interface (AFSTEER_EP_F_IN_POD). */
  inPod?: boolean;
  /** Counter slot (assigned by putEndpoint). */
  slot?: number;
  /** Endpoint key: host veth ifindex, or podEndpointKey(id) (written by putEndpoint; tags the cache entry). */
  ifindex?: number;
  /** Number of route entries (maintained by the steering API). */
  routes?: number;
  /** Bloom filter of the routes' remote addresses (maintained by the steering API). */
  routeBloom?: bigint;
}

/** AFSTEER_BLOOM_BIT: the bloom bit of an address, exactly as the data plane computes it. */
export function bloomBit(address: string): number {
  return Math.imul(fold32(address), 0x9e3779b1) >>> 26;
}

/** An address folded to 32 bits as the data plane loads it (IPv4 as is; IPv6 as the xor of its four words). */
function fold32(address: string): number {
  const b = addressBytes(address);
  let fold = 0;
  for (let i = 0; i < b.length; i += 4) fold ^= b.readUInt32LE(i);
  return fold;
}

/** AFSTEER_REMOTE_BLOOM_BIT: an address's bit (0..1023) in the node-wide remote bloom filter. */
export function remoteBloomBit(address: string): number {
  return Math.imul(fold32(address), 0x9e3779b1) >>> 22;
}

/** Sets the remote bloom bits of addresses in the filter value buf (RemoteBloomLayout). */
export function setRemoteBloomBits(buf: Buffer, addresses: string[]): void {
  for (const a of addresses) {
    const bit = remoteBloomBit(a);
    const off = (bit >> 6) * 8;
    buf.writeBigUInt64LE(buf.readBigUInt64LE(off) | (1n << BigInt(bit & 63)), off);
  }
}

/** Encodes an endpoint value. */
export function encodeEndpoint(ep: Endpoint): Buffer {
  const b = Buffer.alloc(EndpointLayout.size);
  let flags = 0;
  if (ep.ipv4) {
    addressBytes(ep.ipv4).copy(b, EndpointLayout.fields.ipv4.offset);
    flags |= EndpointFlags.ipv4;
  }
  if (ep.ipv6) {
    addressBytes(ep.ipv6).copy(b, EndpointLayout.fields.ipv6.offset);
    flags |= EndpointFlags.ipv6;
  }
  if (ep.inPod) flags |= EndpointFlags.inPod;
  b.writeUInt32LE(flags, EndpointLayout.fields.flags.offset);
  b.writeUInt32LE(ep.podIfindex, EndpointLayout.fields.pod_ifindex.offset);
  b.writeUInt32LE(ep.slot ?? 0, EndpointLayout.fields.slot.offset);
  b.writeUInt32LE(ep.ifindex ?? 0, EndpointLayout.fields.ifindex.offset);
  b.writeUInt32LE(ep.routes ?? 0, EndpointLayout.fields.routes.offset);
  b.writeBigUInt64LE(ep.routeBloom ?? 0n, EndpointLayout.fields.route_bloom.offset);
  return b;
}

/** Decodes an endpoint value. */
export function decodeEndpoint(b: Buffer): Endpoint {
  if (b.length < EndpointLayout.size) throw new Error(`endpoint value is ${b.length} bytes, want ${EndpointLayout.size}`);
  const flags = b.readUInt32LE(EndpointLayout.fields.flags.offset);
  const f = EndpointLayout.fields;
  const ep: Endpoint = {
    podIfindex: b.readUInt32LE(f.pod_ifindex.offset),
    slot: b.readUInt32LE(f.slot.offset),
    ifindex: b.readUInt32LE(f.ifindex.offset),
    routes: b.readUInt32LE(f.routes.offset),
    routeBloom: b.readBigUInt64LE(f.route_bloom.offset),
  };
  if (flags & EndpointFlags.ipv4) ep.ipv4 = bytesToAddress(b.subarray(f.ipv4.offset, f.ipv4.offset + 4));
  if (flags & EndpointFlags.ipv6) ep.ipv6 = bytesToAddress(b.subarray(f.ipv6.offset, f.ipv6.offset + 16));
  if (flags & EndpointFlags.inPod) ep.inPod = true;
  return ep;
}

/** Index of an endpoint counter cell (AFSTEER_COUNTER_INDEX). */
export function counterIndex(slot: number, family: number, direction: number): number {
  return slot * 6 + family * 2 + direction;
}

/** Encodes a remote-pod address key (family 4 or 6). */
export function encodeAddrKey(address: string): Buffer {
  const bytes = addressBytes(address);
  const b = Buffer.alloc(AddrKeyLayout.size);
  b.writeUInt8(bytes.length === 4 ? 4 : 6, AddrKeyLayout.fields.family.offset);
  bytes.copy(b, AddrKeyLayout.fields.addr.offset);
  return b;
}

/** A remote pod as the BPF map holds it (both families). */
export interface RemotePod {
  ipv4: string;
  ipv6: string;
}

/** Encodes a remote-pod value. */
export function encodeRemote(r: RemotePod): Buffer {
  const b = Buffer.alloc(RemoteLayout.size);
  addressBytes(r.ipv4).copy(b, RemoteLayout.fields.ipv4.offset);
  addressBytes(r.ipv6).copy(b, RemoteLayout.fields.ipv6.offset);
  b.writeUInt32LE(EndpointFlags.ipv4 | EndpointFlags.ipv6, RemoteLayout.fields.flags.offset);
  return b;
}

/** Decodes a remote-pod value. */
export function decodeRemote(b: Buffer): RemotePod {
  const f = RemoteLayout.fields;
  return {
    ipv4: bytesToAddress(b.subarray(f.ipv4.offset, f.ipv4.offset + 4)),
    ipv6: bytesToAddress(b.subarray(f.ipv6.offset, f.ipv6.offset + 16)),
  };
}

/** Encodes a route key: (local pod's host ifindex, a remote pod address of either family). */
export function encodeRouteKey(ifindex: number, remoteAddress: string): Buffer {
  const b = Buffer.alloc(RouteKeyLayout.size);
  const a = addressBytes(remoteAddress);
  b.writeUInt32LE(ifindex, RouteKeyLayout.fields.ifindex.offset);
  b.writeUInt8(a.length === 4 ? 4 : 6, RouteKeyLayout.fields.family.offset);
  a.copy(b, RouteKeyLayout.fields.addr.offset);
  return b;
}

/** Decodes a route key. */
export function decodeRouteKey(b: Buffer): { ifindex: number; family: 4 | 6; address: string } {
  const f = RouteKeyLayout.fields;
  const family = b.readUInt8(f.family.offset) === 4 ? 4 : 6;
  const addr = b.subarray(f.addr.offset, f.addr.offset + (family === 4 ? 4 : 16));
  return { ifindex: b.readUInt32LE(f.ifindex.offset), family, address: bytesToAddress(addr) };
}

/** A pair's steering as a route holds it. */
export interface Route {
  wire: WireName;
  generation: number;
  /** Index of the pair's counters. */
  pair: number;
  remote: RemotePod;
  /** AFSTEER_ROUTE_F_PROTECT: this node duplicates the pair's packets (absent = false). */
  protect?: boolean;
}

/** Encodes a route value. */
export function encodeRoute(r: Route): Buffer {
  const f = RouteLayout.fields;
  const b = Buffer.alloc(RouteLayout.size);
  b.writeUInt8(Wire[r.wire], f.wire.offset);
  b.writeUInt8(r.protect ? RouteFlags.protect : 0, f.flags.offset);
  b.writeUInt32LE(r.generation >>> 0, f.generation.offset);
  b.writeUInt32LE(r.pair, f.pair.offset);
  addressBytes(r.remote.ipv4).copy(b, f.remote_ipv4.offset);
  addressBytes(r.remote.ipv6).copy(b, f.remote_ipv6.offset);
  return b;
}

/** Decodes a route value. */
export function decodeRoute(b: Buffer): Route {
  const f = RouteLayout.fields;
  const w = b.readUInt8(f.wire.offset);
  const wire = (Object.keys(Wire) as WireName[]).find((k) => Wire[k] === w);
  if (!wire) throw new Error(`unknown wire family ${w} in route`);
  return {
    wire,
    ...(b.readUInt8(f.flags.offset) & RouteFlags.protect ? { protect: true } : {}),
    generation: b.readUInt32LE(f.generation.offset),
    pair: b.readUInt32LE(f.pair.offset),
    remote: {
      ipv4: bytesToAddress(b.subarray(f.remote_ipv4.offset, f.remote_ipv4.offset + 4)),
      ipv6: bytesToAddress(b.subarray(f.remote_ipv6.offset, f.remote_ipv6.offset + 16)),
    },
  };
}

/** Per-pair counters summed over CPUs; arrays are [IPv4 application packets, IPv6]. */
export interface PairCounters {
  nativePackets: [bigint, bigint];
  nativeBytes: [bigint, bigint];
  encapPackets: [bigint, bigint];
  encapBytes: [bigint, bigint];
  decapPackets: [bigint, bigint];
  decapBytes: [bigint, bigint];
  dropSpoof: bigint;
  dropMismatch: bigint;
  encapFail: bigint;
  decapFail: bigint;
}

/** Sums the per-CPU pair-counter values in buf (cpus slots of 128 bytes). */
export function sumPairCounters(buf: Buffer, cpus: number): PairCounters {
  const f = PairCountersLayout.fields;
  const pair = (off: number, c: number): [bigint, bigint] => [buf.readBigUInt64LE(c + off), buf.readBigUInt64LE(c + off + 8)];
  const out: PairCounters = {
    nativePackets: [0n, 0n],
    nativeBytes: [0n, 0n],
    encapPackets: [0n, 0n],
    encapBytes: [0n, 0n],
    decapPackets: [0n, 0n],
    decapBytes: [0n, 0n],
    dropSpoof: 0n,
    dropMismatch: 0n,
    encapFail: 0n,
    decapFail: 0n,
  };
  for (let i = 0; i < cpus; i++) {
    const c = i * PairCountersLayout.size;
    const add = (k: 'nativePackets' | 'nativeBytes' | 'encapPackets' | 'encapBytes' | 'decapPackets' | 'decapBytes', off: number) => {
      const [a, b] = pair(off, c);
      out[k][0] += a;
      out[k][1] += b;
    };
    add('nativePackets', f.native_packets.offset);
    add('nativeBytes', f.native_bytes.offset);
    add('encapPackets', f.encap_packets.offset);
    add('encapBytes', f.encap_bytes.offset);
    add('decapPackets', f.decap_packets.offset);
    add('decapBytes', f.decap_bytes.offset);
    out.dropSpoof += buf.readBigUInt64LE(c + f.drop_spoof.offset);
    out.dropMismatch += buf.readBigUInt64LE(c + f.drop_mismatch.offset);
    out.encapFail += buf.readBigUInt64LE(c + f.encap_fail.offset);
    out.decapFail += buf.readBigUInt64LE(c + f.decap_fail.offset);
  }
  return out;
}
