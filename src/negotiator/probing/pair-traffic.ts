/**
 * What the data plane saw of a peer's pairs, per wire family, for demand-style probing
 * (traffic-proof.ts): the latest packet sent and received over each family among the pairs,
 * read from the pair-seen map (src/bpf/pair-seen.ts) and brought onto the daemon's clock.
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

/**
 * The latest send and arrival over each wire family among pairs, at daemon time now; undefined
 * when one of them is protected (protected pairs are always probed fast: their suspicion feeds on
 * lost probes). A time from before a pair existed is an earlier pair's (its counter index reused)
 * and is ignored.
 */
export function pairTraffic(
  pairs: [string, PairState][],
  writer: Pick<SteeringWriter, 'getPair'>,
  seen: PairSeenReader,
  now: number,
): { 4: PathTraffic; 6: PathTraffic } | undefined {
  const out: { 4: PathTraffic; 6: PathTraffic } = { 4: {}, 6: {} };
  const offset = now - seen.nowMs();
  for (const [, p] of pairs) {
    if (p.protection && p.protection.mode !== 'off') return undefined;
    const ix = writer.getPair(p.ifindex, p.remote.ipv6)?.pair;
    if (ix === undefined) continue;
    for (const f of [4, 6] as const) {
      const t = out[f];
      const sent = seen.at(ix, false, f);
      const received = seen.at(ix, true, f);
      if (sent > 0 && sent + offset >= p.createdAt) t.sentAt = Math.max(t.sentAt ?? -Infinity, sent + offset);
      if (received > 0 && received + offset >= p.createdAt) t.receivedAt = Math.max(t.receivedAt ?? -Infinity, received + offset);
    }
  }
  return out;
}
