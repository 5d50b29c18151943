/**
 * What the data plane saw of a peer's pairs, per wire family, for demand-style probing
 * (traffic-proof.ts): the latest packet sent and received over each family among the pairs,
 * read from the pair-seen map (src/bpf/pair-seen.ts) and brought onto the daemon's clock. Asked
 * for every peer with pairs on every probe tick, so each pair's counter index is looked up in the
 * steering index at most once a second.
 */
import type { SteeringWriter } from '../../bpf/steering-writer';
import type { PairState } from '../pairs/pair';
import type { PathTraffic } from './traffic-proof';

/** The data plane's last-sent / last-received times per pair (the pair-seen map, or a test's). */
export interface PairSeenReader {
  /** When the pair (its counter index) last sent (received: false) or received over family, in this reader's clock (ms); 0: never. */
  at(pair: number, received: boolean, family: 4 | 6): number;
  /** This reader's clock now (ms). */
  nowMs(): number;
}

/** How long a pair's counter index is taken from the cache before it is looked up again (another writer may have re-made the pair). */
const INDEX_TTL_MS = 1000;

/** Reads the pairs' traffic from the pair-seen map. */
export class PairTraffic {
  private readonly index = new WeakMap<PairState, { ix: number | undefined; at: number }>();
  /** The answer object, reused (asked for once per peer and tick; read at once, never kept). */
  private readonly out: { 4: PathTraffic; 6: PathTraffic } = { 4: {}, 6: {} };

  constructor(
    private readonly writer: Pick<SteeringWriter, 'getPair'>,
    private readonly seen: PairSeenReader,
  ) {}

  /**
   * The latest send and arrival over each wire family among pairs, at daemon time now; undefined
   * when one of them is protected (protected pairs are always probed fast: their suspicion feeds on
   * lost probes). A time from before a pair existed is an earlier pair's (its counter index reused)
   * and is ignored. The object returned is reused by the next call.
   */
  of(pairs: Iterable<PairState>, now: number): { 4: PathTraffic; 6: PathTraffic } | undefined {
    const out = this.out;
    out[4].sentAt = out[4].receivedAt = out[6].sentAt = out[6].receivedAt = undefined;
    const offset = now - this.seen.nowMs();
    for (const p of pairs) {
      if (p.protection && p.protection.mode !== 'off') return undefined;
      let c = this.index.get(p);
      if (!c || now - c.at > INDEX_TTL_MS) {
        c = { ix: this.writer.getPair(p.ifindex, p.remote.ipv6)?.pair, at: now };
        this.index.set(p, c);
      }
      if (c.ix === undefined) continue;
      for (const f of [4, 6] as const) {
        const t = out[f];
        const sent = this.seen.at(c.ix, false, f) + offset;
        const received = this.seen.at(c.ix, true, f) + offset;
        if (sent > offset && sent >= p.createdAt) t.sentAt = Math.max(t.sentAt ?? -Infinity, sent);
        if (received > offset && received >= p.createdAt) t.receivedAt = Math.max(t.receivedAt ?? -Infinity, received);
      }
    }
    return out;
  }
}
