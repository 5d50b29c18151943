/**
 * TypeScript mirror of bpf/include/afsteer_maps.h: sizes, field offsets and codecs of every
 * struct shared with the kernel. test/integration/btf-layout.test.ts checks it against BTF.
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
  size: 28,
  fields: {
    ipv4: { offset: 0, size: 4 },
    ipv6: { offset: 4, size: 16 },
    flags: { offset: 20, size: 4 },
    pod_ifindex: { offset: 24, size: 4 },
  },
} as const satisfies StructLayout;

/** struct afsteer_counter_key */
export const CounterKeyLayout = {
  name: 'afsteer_counter_key',
  size: 8,
  fields: {
    ifindex: { offset: 0, size: 4 },
    family: { offset: 4, size: 1 },
    direction: { offset: 5, size: 1 },
    pad: { offset: 6, size: 2 },
  },
} as const satisfies StructLayout;

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

/** struct afsteer_pair_key */
export const PairKeyLayout = {
  name: 'afsteer_pair_key',
  size: 20,
  fields: {
    ifindex: { offset: 0, size: 4 },
    remote_ipv6: { offset: 4, size: 16 },
  },
} as const satisfies StructLayout;

/** struct afsteer_steering */
export const SteeringLayout = {
  name: 'afsteer_steering',
  size: 8,
  fields: {
    wire: { offset: 0, size: 1 },
    pad: { offset: 1, size: 3 },
    generation: { offset: 4, size: 4 },
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

/** Every mirrored struct, for the BTF check. */
export const ALL_LAYOUTS: readonly StructLayout[] = [
  EndpointLayout,
  CounterKeyLayout,
  CountersLayout,
  AddrKeyLayout,
  RemoteLayout,
  PairKeyLayout,
  SteeringLayout,
  PairCountersLayout,
];

/** Map names and capacities (AFSTEER_MAX_* in the header). */
export const MAPS = {
  endpoints: { name: 'afsteer_endpoints', keySize: 4, valueSize: EndpointLayout.size, maxEntries: 1024 },
  counters: { name: 'afsteer_counters', keySize: CounterKeyLayout.size, valueSize: CountersLayout.size, maxEntries: 1024 * 3 * 2 },
  remotes: { name: 'afsteer_remotes', keySize: AddrKeyLayout.size, valueSize: RemoteLayout.size, maxEntries: 65536 * 2 },
  steering: { name: 'afsteer_steering', keySize: PairKeyLayout.size, valueSize: SteeringLayout.size, maxEntries: 262144 },
  pairCounters: { name: 'afsteer_pair_counters', keySize: PairKeyLayout.size, valueSize: PairCountersLayout.size, maxEntries: 262144 },
  stats: { name: 'afsteer_stats', keySize: 4, valueSize: 8, maxEntries: 8 },
} as const;

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
export const EndpointFlags = { ipv4: 1, ipv6: 2 } as const;

/** A local endpoint as the BPF map holds it. */
export interface Endpoint {
  ipv4?: string;
  ipv6?: string;
  podIfindex: number;
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
  b.writeUInt32LE(flags, EndpointLayout.fields.flags.offset);
  b.writeUInt32LE(ep.podIfindex, EndpointLayout.fields.pod_ifindex.offset);
  return b;
}

/** Decodes an endpoint value. */
export function decodeEndpoint(b: Buffer): Endpoint {
  if (b.length < EndpointLayout.size) throw new Error(`endpoint value is ${b.length} bytes, want ${EndpointLayout.size}`);
  const flags = b.readUInt32LE(EndpointLayout.fields.flags.offset);
  const f = EndpointLayout.fields;
  const ep: Endpoint = { podIfindex: b.readUInt32LE(f.pod_ifindex.offset) };
  if (flags & EndpointFlags.ipv4) ep.ipv4 = bytesToAddress(b.subarray(f.ipv4.offset, f.ipv4.offset + 4));
  if (flags & EndpointFlags.ipv6) ep.ipv6 = bytesToAddress(b.subarray(f.ipv6.offset, f.ipv6.offset + 16));
  return ep;
}

/** Encodes a counter key. */
export function encodeCounterKey(ifindex: number, family: number, direction: number): Buffer {
  const b = Buffer.alloc(CounterKeyLayout.size);
  b.writeUInt32LE(ifindex, CounterKeyLayout.fields.ifindex.offset);
  b.writeUInt8(family, CounterKeyLayout.fields.family.offset);
  b.writeUInt8(direction, CounterKeyLayout.fields.direction.offset);
  return b;
}

/** Decodes a counter key. */
export function decodeCounterKey(b: Buffer): { ifindex: number; family: number; direction: number } {
  const f = CounterKeyLayout.fields;
  return { ifindex: b.readUInt32LE(f.ifindex.offset), family: b.readUInt8(f.family.offset), direction: b.readUInt8(f.direction.offset) };
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
  return { ipv4: bytesToAddress(b.subarray(f.ipv4.offset, f.ipv4.offset + 4)), ipv6: bytesToAddress(b.subarray(f.ipv6.offset, f.ipv6.offset + 16)) };
}

/** Encodes a (local pod, remote pod) key. */
export function encodePairKey(ifindex: number, remoteIpv6: string): Buffer {
  const b = Buffer.alloc(PairKeyLayout.size);
  b.writeUInt32LE(ifindex, PairKeyLayout.fields.ifindex.offset);
  const a = addressBytes(remoteIpv6);
  if (a.length !== 16) throw new Error(`pair key needs the remote pod's IPv6 address, got ${remoteIpv6}`);
  a.copy(b, PairKeyLayout.fields.remote_ipv6.offset);
  return b;
}

/** Decodes a pair key. */
export function decodePairKey(b: Buffer): { ifindex: number; remoteIpv6: string } {
  const f = PairKeyLayout.fields;
  return { ifindex: b.readUInt32LE(f.ifindex.offset), remoteIpv6: bytesToAddress(b.subarray(f.remote_ipv6.offset, f.remote_ipv6.offset + 16)) };
}

/** A steering entry. */
export interface Steering {
  wire: WireName;
  generation: number;
}

/** Encodes a steering value. */
export function encodeSteering(s: Steering): Buffer {
  const b = Buffer.alloc(SteeringLayout.size);
  b.writeUInt8(Wire[s.wire], SteeringLayout.fields.wire.offset);
  b.writeUInt32LE(s.generation >>> 0, SteeringLayout.fields.generation.offset);
  return b;
}

/** Decodes a steering value. */
export function decodeSteering(b: Buffer): Steering {
  const w = b.readUInt8(SteeringLayout.fields.wire.offset);
  const wire = (Object.keys(Wire) as WireName[]).find((k) => Wire[k] === w);
  if (!wire) throw new Error(`unknown wire family ${w} in steering entry`);
  return { wire, generation: b.readUInt32LE(SteeringLayout.fields.generation.offset) };
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
    nativePackets: [0n, 0n], nativeBytes: [0n, 0n], encapPackets: [0n, 0n], encapBytes: [0n, 0n],
    decapPackets: [0n, 0n], decapBytes: [0n, 0n], dropSpoof: 0n, dropMismatch: 0n, encapFail: 0n, decapFail: 0n,
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
