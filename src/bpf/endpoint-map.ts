/** Typed access to the pinned endpoint and per-endpoint counter maps. */
import { CountersLayout, decodeCounterKey, decodeEndpoint, encodeCounterKey, encodeEndpoint, MAPS, type Endpoint } from './maps-layout';
import { possibleCpus, withPinnedMap } from './pinned-map';

/** Packet and byte totals (summed over CPUs) for one endpoint, family and direction. */
export interface CounterRow {
  ifindex: number;
  family: number;
  direction: number;
  packets: bigint;
  bytes: bigint;
}

function ifKey(ifindex: number): Buffer {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(ifindex);
  return key;
}

const endpoints = <T>(pinDir: string, fn: (m: import('./pinned-map').PinnedMap) => T) =>
  withPinnedMap(pinDir, MAPS.endpoints.name, MAPS.endpoints.keySize, MAPS.endpoints.valueSize, fn);

/** Writes the endpoint for host ifindex; a full map is a clear error. */
export function putEndpoint(pinDir: string, ifindex: number, ep: Endpoint): void {
  endpoints(pinDir, (m) => m.update(ifKey(ifindex), encodeEndpoint(ep), 0, MAPS.endpoints.maxEntries));
}

/** The endpoint for host ifindex, or undefined. */
export function getEndpoint(pinDir: string, ifindex: number): Endpoint | undefined {
  return endpoints(pinDir, (m) => {
    const v = m.lookup(ifKey(ifindex));
    return v && decodeEndpoint(v);
  });
}

/** Removes the endpoint for host ifindex and its counters; already gone is not an error. */
export function deleteEndpoint(pinDir: string, ifindex: number): void {
  endpoints(pinDir, (m) => m.delete(ifKey(ifindex)));
  const slot = Math.ceil(CountersLayout.size / 8) * 8;
  withPinnedMap(pinDir, MAPS.counters.name, MAPS.counters.keySize, slot * possibleCpus(), (m) => {
    for (const key of m.keys()) if (decodeCounterKey(key).ifindex === ifindex) m.delete(key);
  });
}

/** Every endpoint in the map, by host ifindex. */
export function listEndpoints(pinDir: string): Map<number, Endpoint> {
  return endpoints(pinDir, (m) => {
    const out = new Map<number, Endpoint>();
    for (const key of m.keys()) {
      const v = m.lookup(key);
      if (v) out.set(key.readUInt32LE(0), decodeEndpoint(v));
    }
    return out;
  });
}

/** Per-CPU counters summed, for one endpoint or all. */
export function readCounters(pinDir: string, ifindex?: number): CounterRow[] {
  const cpus = possibleCpus();
  const stride = Math.ceil(CountersLayout.size / 8) * 8;
  return withPinnedMap(pinDir, MAPS.counters.name, MAPS.counters.keySize, stride * cpus, (m) => {
    const rows: CounterRow[] = [];
    for (const key of m.keys()) {
      const k = decodeCounterKey(key);
      if (ifindex !== undefined && k.ifindex !== ifindex) continue;
      const val = m.lookup(key);
      if (!val) continue;
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
