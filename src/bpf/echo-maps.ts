/**
 * The echo reflector's maps (bpf/include/afsteer_echo.h), field for field (checked against the
 * object's BTF), and their userspace side: the allow-list of peers' control addresses
 * (afsteer_echo_peers, kept by afsteerd), the rate configuration and the counts of echoes sent
 * back and refused by reason. A pin whose layout differs from these (left by another version) is
 * found by pinLayoutProblem and replaced when the reflector is loaded (echo-reflector.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Family } from '../net/family';
import { addressBytes, bytesToAddress, canonical, familyOf } from '../net/ip';
import { check, closeFds, libbpf, openPinned } from './libbpf';
import type { StructLayout } from './maps-layout';
import { PinnedMap, possibleCpus, u32, withPinnedMap } from './pinned-map';

/** struct afsteer_echo_cfg */
export const EchoCfgLayout = {
  name: 'afsteer_echo_cfg',
  size: 16,
  fields: {
    port_be: { offset: 0, size: 2 },
    pad: { offset: 2, size: 2 },
    rate_per_sec: { offset: 4, size: 4 },
    burst: { offset: 8, size: 4 },
    pad2: { offset: 12, size: 4 },
  },
} as const satisfies StructLayout;
/** struct afsteer_echo_stats (per CPU) */
export const EchoStatsLayout = {
  name: 'afsteer_echo_stats',
  size: 8,
  fields: { reflected: { offset: 0, size: 8 } },
} as const satisfies StructLayout;
/** struct afsteer_echo_src: the allow-list's and the rate buckets' key */
export const EchoSrcLayout = {
  name: 'afsteer_echo_src',
  size: 20,
  fields: { family: { offset: 0, size: 1 }, pad: { offset: 1, size: 3 }, addr: { offset: 4, size: 16 } },
} as const satisfies StructLayout;
/** struct afsteer_echo_peer */
export const EchoPeerLayout = {
  name: 'afsteer_echo_peer',
  size: 4,
  fields: { flags: { offset: 0, size: 4 } },
} as const satisfies StructLayout;
/** struct afsteer_echo_bucket */
export const EchoBucketLayout = {
  name: 'afsteer_echo_bucket',
  size: 16,
  fields: { last_ns: { offset: 0, size: 8 }, tokens: { offset: 8, size: 8 } },
} as const satisfies StructLayout;
/** enum afsteer_echo_refusal, in counter order */
export const ECHO_REFUSALS = ['unknown-source', 'rate', 'size', 'loop'] as const;
/** A reason an echo was refused. */
export type EchoRefusal = (typeof ECHO_REFUSALS)[number];
/** struct afsteer_echo_refused (per CPU) */
export const EchoRefusedLayout = {
  name: 'afsteer_echo_refused',
  size: 8 * ECHO_REFUSALS.length,
  fields: { count: { offset: 0, size: 8 * ECHO_REFUSALS.length } },
} as const satisfies StructLayout;
/** Every echo struct mirror (the BTF layout test). */
export const ECHO_LAYOUTS = [EchoCfgLayout, EchoStatsLayout, EchoSrcLayout, EchoPeerLayout, EchoBucketLayout, EchoRefusedLayout] as const;

/** BPF map types used here (linux/bpf.h). */
const BPF_MAP_TYPE = { hash: 1, array: 2, percpuArray: 6, lruHash: 9 } as const;

/** The echo object's maps: name, kernel type, key and value sizes, capacity. */
export const ECHO_MAPS = {
  cfg: { name: 'afsteer_echo_cfg', type: BPF_MAP_TYPE.array, keySize: 4, valueSize: EchoCfgLayout.size, maxEntries: 1 },
  stats: { name: 'afsteer_echo_stats', type: BPF_MAP_TYPE.percpuArray, keySize: 4, valueSize: EchoStatsLayout.size, maxEntries: 1 },
  peers: {
    name: 'afsteer_echo_peers',
    type: BPF_MAP_TYPE.hash,
    keySize: EchoSrcLayout.size,
    valueSize: EchoPeerLayout.size,
    maxEntries: 10240,
  },
  rate: {
    name: 'afsteer_echo_rate',
    type: BPF_MAP_TYPE.lruHash,
    keySize: EchoSrcLayout.size,
    valueSize: EchoBucketLayout.size,
    maxEntries: 16384,
  },
  refused: {
    name: 'afsteer_echo_refused',
    type: BPF_MAP_TYPE.percpuArray,
    keySize: 4,
    valueSize: EchoRefusedLayout.size,
    maxEntries: 1,
  },
} as const;
/** One of the echo object's maps. */
export type EchoMapSpec = (typeof ECHO_MAPS)[keyof typeof ECHO_MAPS];

/**
 * The per-source rate: 500 echoes a second, bursts of 100. A peer's prober sends one echo per
 * family every 20 ms (50 a second) while it has pairs toward this node, once a second otherwise;
 * ten times that, and a burst of two seconds' worth, never refuses a real probe (nor one of a
 * prober catching up after an event-loop stall).
 */
export const ECHO_RATE = { perSec: 500, burst: 100 } as const;

/** The allow-list key of an address (family byte, address in network order, zero padded). */
export function encodeEchoSrc(address: string): Buffer {
  const a = canonical(address);
  const family = familyOf(a);
  if (!family) throw new Error(`not an IP address: ${JSON.stringify(address)}`);
  const k = Buffer.alloc(EchoSrcLayout.size);
  k.writeUInt8(family, EchoSrcLayout.fields.family.offset);
  addressBytes(a).copy(k, EchoSrcLayout.fields.addr.offset);
  return k;
}

/** The address of an allow-list key. */
export function decodeEchoSrc(k: Buffer): { family: Family; address: string } {
  const family = k.readUInt8(EchoSrcLayout.fields.family.offset) as Family;
  const off = EchoSrcLayout.fields.addr.offset;
  return { family, address: bytesToAddress(k.subarray(off, off + (family === 4 ? 4 : 16))) };
}

/** The config value: echo port (network order in the map), rate and burst. */
export function encodeEchoCfg(port: number, rate: { perSec: number; burst: number } = ECHO_RATE): Buffer {
  const v = Buffer.alloc(EchoCfgLayout.size);
  v.writeUInt16BE(port, EchoCfgLayout.fields.port_be.offset);
  v.writeUInt32LE(rate.perSec, EchoCfgLayout.fields.rate_per_sec.offset);
  v.writeUInt32LE(rate.burst, EchoCfgLayout.fields.burst.offset);
  return v;
}

/** The allow-list refused an address: the map is full (counted by the caller). */
export class EchoAllowListFull extends Error {
  constructor(
    readonly address: string,
    options?: ErrorOptions,
  ) {
    super(`echo allow-list is full (${ECHO_MAPS.peers.maxEntries} addresses): ${address} not added`, options);
    this.name = 'EchoAllowListFull';
  }
}

/** The pinned allow-list of peers' control addresses the kernel reflector answers. */
export class EchoAllowList {
  private constructor(private readonly map: PinnedMap) {}

  /** Opens pinDir's afsteer_echo_peers (made when the reflector was loaded). */
  static open(pinDir: string): EchoAllowList {
    return new EchoAllowList(PinnedMap.open(pinDir, ECHO_MAPS.peers.name, ECHO_MAPS.peers.keySize, ECHO_MAPS.peers.valueSize));
  }

  /** Allows echoes from address; throws EchoAllowListFull at the map's size limit. */
  add(address: string): void {
    const value = Buffer.alloc(EchoPeerLayout.size);
    value.writeUInt32LE(1, 0);
    try {
      this.map.update(encodeEchoSrc(address), value, 0, ECHO_MAPS.peers.maxEntries);
    } catch (err) {
      if (/is full/.test((err as Error).message)) throw new EchoAllowListFull(canonical(address), { cause: err });
      throw err;
    }
  }

  /** Stops allowing echoes from address; false when it was not there. */
  remove(address: string): boolean {
    return this.map.delete(encodeEchoSrc(address));
  }

  /** Every allowed address. */
  list(): { family: Family; address: string }[] {
    return this.map.keys().map(decodeEchoSrc);
  }

  /** Makes the list exactly addresses (start-up: what a previous run left is dropped); returns the addresses refused as full. */
  replaceAll(addresses: Iterable<string>): string[] {
    const want = new Map([...addresses].map((a) => [encodeEchoSrc(a).toString('hex'), a]));
    for (const k of this.map.keys()) if (!want.has(k.toString('hex'))) this.map.delete(k);
    const refused: string[] = [];
    for (const a of want.values()) {
      try {
        this.add(a);
      } catch (err) {
        if (!(err instanceof EchoAllowListFull)) throw err;
        refused.push(a);
      }
    }
    return refused;
  }

  /** Closes the map. */
  close(): void {
    this.map.close();
  }
}

/** Echo counts of the kernel reflector, summed over CPUs (zeros where it was never loaded). */
export function echoCounts(pinDir: string): { reflected: number; refused: Record<EchoRefusal, number> } {
  const refused = Object.fromEntries(ECHO_REFUSALS.map((r) => [r, 0])) as Record<EchoRefusal, number>;
  const out = { reflected: 0, refused };
  const cpus = possibleCpus();
  if (existsSync(join(pinDir, ECHO_MAPS.stats.name)))
    withPinnedMap(pinDir, ECHO_MAPS.stats.name, 4, EchoStatsLayout.size * cpus, (m) => {
      const v = m.lookup(u32(0));
      for (let c = 0; v && c < cpus; c++) out.reflected += Number(v.readBigUInt64LE(c * EchoStatsLayout.size));
    });
  if (existsSync(join(pinDir, ECHO_MAPS.refused.name)))
    withPinnedMap(pinDir, ECHO_MAPS.refused.name, 4, EchoRefusedLayout.size * cpus, (m) => {
      const v = m.lookup(u32(0));
      for (let c = 0; v && c < cpus; c++)
        ECHO_REFUSALS.forEach((r, i) => {
          refused[r] += Number(v.readBigUInt64LE(c * EchoRefusedLayout.size + i * 8));
        });
    });
  return out;
}

/**
 * Why the map pinned at pinDir/spec.name cannot serve as spec (another type, key or value size,
 * or capacity: a pin left by another version), or undefined when it can or there is none.
 */
export function pinLayoutProblem(pinDir: string, spec: EchoMapSpec): string | undefined {
  const path = join(pinDir, spec.name);
  if (!existsSync(path)) return undefined;
  const fd = openPinned(path);
  try {
    // struct bpf_map_info: type, id, key_size, value_size, max_entries (u32 each), ...
    const info = Buffer.alloc(80);
    check(`bpf_obj_get_info_by_fd(${spec.name})`, libbpf().infoByFd(fd, info, [info.length]));
    const [type, , key, value, max] = [0, 4, 8, 12, 16].map((o) => info.readUInt32LE(o));
    const want = [spec.type, 0, spec.keySize, spec.valueSize, spec.maxEntries];
    const got = [type, 0, key, value, max];
    if (got.every((g, i) => g === want[i])) return undefined;
    return `pinned ${spec.name} is type ${type}, key ${key} B, value ${value} B, ${max} entries; this version needs type ${spec.type}, key ${spec.keySize} B, value ${spec.valueSize} B, ${spec.maxEntries} entries`;
  } finally {
    closeFds(fd);
  }
}
