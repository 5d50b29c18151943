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

/** Every mirrored struct, for the BTF check. */
export const ALL_LAYOUTS: readonly StructLayout[] = [EndpointLayout, CounterKeyLayout, CountersLayout];

/** Map names and capacities (AFSTEER_MAX_* in the header). */
export const MAPS = {
  endpoints: { name: 'afsteer_endpoints', keySize: 4, valueSize: EndpointLayout.size, maxEntries: 1024 },
  counters: { name: 'afsteer_counters', keySize: CounterKeyLayout.size, valueSize: CountersLayout.size, maxEntries: 1024 * 3 * 2 },
} as const;

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
