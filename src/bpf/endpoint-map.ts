/** Typed access to the pinned endpoint and counter maps. */
import { join } from 'node:path';
import { check, libbpf } from './libbpf';
import { CountersLayout, decodeCounterKey, decodeEndpoint, encodeCounterKey, encodeEndpoint, MAPS, type Endpoint } from './maps-layout';
import { closeFds, openPinned } from './programs';

const BPF_ANY = 0;
const ENOENT = 2;
const E2BIG = 7;

/** Packet and byte totals (summed over CPUs) for one endpoint, family and direction. */
export interface CounterRow {
  ifindex: number;
  family: number;
  direction: number;
  packets: bigint;
  bytes: bigint;
}

function withMap<T>(pinDir: string, name: string, fn: (fd: number) => T): T {
  const fd = openPinned(join(pinDir, name));
  try {
    return fn(fd);
  } finally {
    closeFds(fd);
  }
}

/** Writes the endpoint for host ifindex; a full map is a clear error. */
export function putEndpoint(pinDir: string, ifindex: number, ep: Endpoint): void {
  withMap(pinDir, MAPS.endpoints.name, (fd) => {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(ifindex);
    const rc = libbpf().mapUpdate(fd, key, encodeEndpoint(ep), BigInt(BPF_ANY));
    if (rc === -E2BIG) throw new Error(`endpoint map is full (${MAPS.endpoints.maxEntries} endpoints on this node)`);
    check('update endpoint map', rc);
  });
}

/** The endpoint for host ifindex, or undefined. */
export function getEndpoint(pinDir: string, ifindex: number): Endpoint | undefined {
  return withMap(pinDir, MAPS.endpoints.name, (fd) => {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(ifindex);
    const val = Buffer.alloc(MAPS.endpoints.valueSize);
    const rc = libbpf().mapLookup(fd, key, val);
    if (rc === -ENOENT) return undefined;
    check('look up endpoint map', rc);
    return decodeEndpoint(val);
  });
}

/** Removes the endpoint for host ifindex and its counters; already gone is not an error. */
export function deleteEndpoint(pinDir: string, ifindex: number): void {
  withMap(pinDir, MAPS.endpoints.name, (fd) => {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(ifindex);
    const rc = libbpf().mapDelete(fd, key);
    if (rc !== -ENOENT) check('delete from endpoint map', rc);
  });
  withMap(pinDir, MAPS.counters.name, (fd) => {
    for (const key of keys(fd, MAPS.counters.keySize)) {
      if (decodeCounterKey(key).ifindex !== ifindex) continue;
      const rc = libbpf().mapDelete(fd, key);
      if (rc !== -ENOENT) check('delete from counter map', rc);
    }
  });
}

/** Every key of a map (snapshot). */
function keys(fd: number, keySize: number): Buffer[] {
  const out: Buffer[] = [];
  let prev: Buffer | null = null;
  for (;;) {
    const next = Buffer.alloc(keySize);
    const rc = libbpf().mapNextKey(fd, prev, next);
    if (rc === -ENOENT) return out;
    check('iterate map', rc);
    out.push(next);
    prev = next;
  }
}

/** Every endpoint in the map, by host ifindex. */
export function listEndpoints(pinDir: string): Map<number, Endpoint> {
  return withMap(pinDir, MAPS.endpoints.name, (fd) => {
    const out = new Map<number, Endpoint>();
    for (const key of keys(fd, 4)) {
      const val = Buffer.alloc(MAPS.endpoints.valueSize);
      if (libbpf().mapLookup(fd, key, val) === 0) out.set(key.readUInt32LE(0), decodeEndpoint(val));
    }
    return out;
  });
}

/** Per-CPU counters summed, for one endpoint or all. */
export function readCounters(pinDir: string, ifindex?: number): CounterRow[] {
  const cpus = check('libbpf_num_possible_cpus', libbpf().numCpus());
  const stride = Math.ceil(CountersLayout.size / 8) * 8;
  return withMap(pinDir, MAPS.counters.name, (fd) => {
    const rows: CounterRow[] = [];
    for (const key of keys(fd, MAPS.counters.keySize)) {
      const k = decodeCounterKey(key);
      if (ifindex !== undefined && k.ifindex !== ifindex) continue;
      const val = Buffer.alloc(stride * cpus);
      if (libbpf().mapLookup(fd, key, val) !== 0) continue;
      let packets = 0n, bytes = 0n;
      for (let c = 0; c < cpus; c++) {
        packets += val.readBigUInt64LE(c * stride + CountersLayout.fields.packets.offset);
        bytes += val.readBigUInt64LE(c * stride + CountersLayout.fields.bytes.offset);
      }
      rows.push({ ...k, packets, bytes });
    }
    return rows;
  });
}

/** Key encoder re-exported for tests that seed counters. */
export { encodeCounterKey };
