/**
 * Two writers of one node's steering maps, interleaved at random: a long-lived one (afsteerd's)
 * and one opened per operation (`afsteer steer`'s), each with remote pods of its own. After each
 * operation the maps must match both writers' own records (pairs with the wire each set, counter
 * indexes never taken from the other, bloom bits never lost) and the writers' rules (two routes
 * a pair, unique counter indexes, route counts and blooms equal to the routes). Used by the unit
 * test (in-memory maps) and the root test (real pinned maps).
 */
import {
  bloomBit,
  decodeEndpoint,
  decodeRemote,
  decodeRoute,
  decodeRouteKey,
  encodeAddrKey as encodeAddr,
  setRemoteBloomBits,
  type WireName,
} from '../../src/bpf/maps-layout';
import { u32 } from '../../src/bpf/pinned-map';
import type { SteeringMapSet, SteeringWriter } from '../../src/bpf/steering-writer';
import { rng } from './prng';

/** One writer's view of what it made. */
interface Model {
  remotes: Map<string, { ipv4: string; ipv6: string }>;
  /** "ifindex|remote ipv6" → wire and the counter index it got. */
  pairs: Map<string, { wire: WireName; pair?: number }>;
}

/** How to get at the writers and the maps. */
export interface InterleaveSetup {
  /** The long-lived writer. */
  held: SteeringWriter;
  /** Opens a fresh writer (closed after each operation). */
  openOneShot: () => SteeringWriter;
  /** Opens the maps to check them (closed afterwards). */
  openMaps: () => { maps: SteeringMapSet; close: () => void };
  /** Host ifindexes of local pods (dual-stack). */
  ifindexes: number[];
}

/** What a run did. */
export interface InterleaveReport {
  operations: number;
  resyncsForOthers: number;
  maxPairs: number;
}

const WIRES: WireName[] = ['native', 'ipv4', 'ipv6'];

/** Runs n interleaved operations, checking after every `checkEvery`; throws on the first violation. */
export function interleaveWriters(s: InterleaveSetup, n: number, checkEvery = 1, seed = 42): InterleaveReport {
  // mulberry32 (an LCG's low bits would alternate, and pick the same writer every time).
  const r = rng(seed);
  const rnd = (k: number) => (r.next() * k) | 0;
  const pools = [0, 1].map((w) =>
    Array.from({ length: 24 }, (_, i) => ({ ipv4: `10.${77 + w}.0.${i + 1}`, ipv6: `fd00:${77 + w}::${(i + 1).toString(16)}` })),
  );
  const models: Model[] = [0, 1].map(() => ({ remotes: new Map(), pairs: new Map() }));
  let maxPairs = 0;
  for (let op = 1; op <= n; op++) {
    const who = rnd(2);
    const m = models[who]!;
    const w = who === 0 ? s.held : s.openOneShot();
    try {
      const pod = pools[who]![rnd(24)]!;
      const ifindex = s.ifindexes[rnd(s.ifindexes.length)]!;
      const k = `${ifindex}|${pod.ipv6}`;
      switch (rnd(10)) {
        case 0:
        case 1:
          w.registerRemote(pod);
          m.remotes.set(pod.ipv6, pod);
          break;
        case 2:
          w.unregisterRemote(pod.ipv4);
          m.remotes.delete(pod.ipv6);
          for (const pk of [...m.pairs.keys()]) if (pk.endsWith(`|${pod.ipv6}`)) m.pairs.delete(pk);
          break;
        case 3:
          w.clear(ifindex, pod.ipv6);
          m.pairs.delete(k);
          break;
        default: {
          if (!m.remotes.has(pod.ipv6)) break;
          const wire = WIRES[rnd(3)]!;
          w.setWire(ifindex, rnd(2) ? pod.ipv4 : pod.ipv6, wire, op);
          const got = w.getPair(ifindex, pod.ipv6)!.pair;
          const prev = m.pairs.get(k);
          if (prev?.pair !== undefined && prev.pair !== got)
            throw new Error(`op ${op}: pair ${k} changed counter index ${prev.pair} → ${got}`);
          m.pairs.set(k, { wire, pair: got });
        }
      }
    } finally {
      if (who === 1) w.close();
    }
    if (op % checkEvery === 0 || op === n) maxPairs = Math.max(maxPairs, check(s, models, op));
  }
  return { operations: n, resyncsForOthers: s.held.resyncsForOthers, maxPairs };
}

/** Checks the maps against both models and the rules; returns the number of pairs. */
function check(s: InterleaveSetup, models: Model[], op: number): number {
  const { maps, close } = s.openMaps();
  try {
    const fail = (msg: string) => {
      throw new Error(`after op ${op}: ${msg}`);
    };
    // Every route by "ifindex|address".
    const routes = new Map<string, { key: ReturnType<typeof decodeRouteKey>; value: Buffer }>();
    for (const k of maps.routes.keys()) {
      const key = decodeRouteKey(k);
      routes.set(`${key.ifindex}|${key.address}`, { key, value: maps.routes.lookup(k)! });
    }
    const pairs = new Map<string, { ifindex: number; pair: number; wire: WireName; remote: { ipv4: string; ipv6: string } }>();
    for (const { key, value } of routes.values()) {
      const r = decodeRoute(value);
      const other = key.family === 6 ? r.remote.ipv4 : r.remote.ipv6;
      const twin = routes.get(`${key.ifindex}|${other}`);
      if (!twin?.value.equals(value)) fail(`route ${key.ifindex}|${key.address} has no identical twin for ${other}`);
      pairs.set(`${key.ifindex}|${r.remote.ipv6}`, { ifindex: key.ifindex, pair: r.pair, wire: r.wire, remote: r.remote });
    }
    const idx = [...pairs.values()].map((p) => p.pair);
    if (new Set(idx).size !== idx.length) fail(`counter index used twice: ${idx.sort((a, b) => a - b).join(',')}`);
    for (const [i, m] of models.entries()) {
      for (const [k, want] of m.pairs) {
        const got = pairs.get(k);
        if (!got) fail(`writer ${i}'s pair ${k} is gone`);
        else if (got.wire !== want.wire || got.pair !== want.pair)
          fail(`writer ${i}'s pair ${k}: maps have ${got.wire}/#${got.pair}, it set ${want.wire}/#${want.pair}`);
      }
      for (const r of m.remotes.values()) {
        const v = maps.remotes.lookup(encodeAddr(r.ipv4));
        if (!v || decodeRemote(v).ipv6 !== r.ipv6) fail(`writer ${i}'s remote ${r.ipv4} is gone`);
      }
    }
    if (maps.remoteBloom) {
      const bloom = maps.remoteBloom.lookup(u32(0))!;
      const all = models.flatMap((m) => [...m.remotes.values()].flatMap((r) => [r.ipv4, r.ipv6]));
      const want = Buffer.from(bloom);
      setRemoteBloomBits(want, all);
      if (!want.equals(bloom)) fail('a registered remote lost its remote-bloom bit');
    }
    for (const ifindex of s.ifindexes) {
      const ep = decodeEndpoint(maps.endpoints.lookup(u32(ifindex))!);
      const mine = [...pairs.values()].filter((p) => p.ifindex === ifindex);
      if (ep.routes !== mine.length * 2) fail(`endpoint #${ifindex} counts ${ep.routes} routes, has ${mine.length * 2}`);
      for (const p of mine) {
        for (const a of [p.remote.ipv4, p.remote.ipv6])
          if (!(ep.routeBloom! & (1n << BigInt(bloomBit(a))))) fail(`endpoint #${ifindex} bloom lacks ${a}`);
      }
    }
    return pairs.size;
  } finally {
    close();
  }
}
