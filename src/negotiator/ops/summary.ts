/**
 * The page's summary at cluster size (/summary.json): totals over every peer — peers by state,
 * pairs by wire family, switches in the last 15 minutes by reason, probed paths by mode — and the
 * worst peers first (blackholed, silent, by loss, by recent switches, by RTT), filtered by a
 * name or a state, at most `limit` of them, so the JSON the page polls every second stays bounded
 * however many peers there are. Ranking and filtering are pure.
 */
import type { WireName } from '../../bpf/maps-layout';
import type { FamilyName } from '../../net/family';
import type { DaemonParts } from './daemon-view';
import type { History } from './history';
import type { Snapshot } from './snapshot';
import { type FamilyState, SWITCH_REASONS, type SwitchReason } from './vocabulary';

/** One peer as the summary lists it. */
export interface SummaryRow {
  peer: string;
  alive: boolean;
  /** Has pairs with this node. */
  active: boolean;
  pairs: Record<WireName, number>;
  families: Partial<Record<FamilyName, { state: FamilyState; rttMs?: number; loss?: number }>>;
  /** Switches of pairs with this peer in the last 15 minutes. */
  switches: number;
}

/** A peer's state as the filter names it: a family state of its worst family, or silent. */
export type PeerState = FamilyState | 'silent';

/** What the page asks for: a name substring, a state, how many rows. */
export interface SummaryQuery {
  q?: string;
  state?: PeerState;
  limit: number;
}

/** The summary served. */
export interface Summary {
  node: string;
  /** Wall ms. */
  now: number;
  totals: {
    peers: number;
    byState: Record<PeerState, number>;
    pairs: Record<WireName, number>;
    switches: { total: number; byReason: Record<SwitchReason, number> };
    paths: { fast: number; demand: number; idle: number };
  };
  /** Peers the filter matched (rows: the first `limit` of them, worst first). */
  matched: number;
  peers: SummaryRow[];
}

/** Most rows a summary holds. */
export const MAX_SUMMARY_ROWS = 500;

const STATE_RANK: Record<PeerState, number> = { blackhole: 4, silent: 3, degraded: 2, probing: 1, up: 0 };

/** A peer's state: silent when not heard, else its worst family's. */
export function peerState(r: Pick<SummaryRow, 'alive' | 'families'>): PeerState {
  if (!r.alive) return 'silent';
  let worst: PeerState = 'up';
  for (const f of Object.values(r.families)) if (STATE_RANK[f.state] > STATE_RANK[worst]) worst = f.state;
  return worst;
}

const maxOf = (r: SummaryRow, k: 'rttMs' | 'loss') => Math.max(0, ...Object.values(r.families).map((f) => f[k] ?? 0));

/** Worst first: blackholed, silent, degraded …; then by loss, by recent switches, by RTT; then by name. */
export function worstFirst(a: SummaryRow, b: SummaryRow): number {
  return (
    STATE_RANK[peerState(b)] - STATE_RANK[peerState(a)] ||
    maxOf(b, 'loss') - maxOf(a, 'loss') ||
    b.switches - a.switches ||
    maxOf(b, 'rttMs') - maxOf(a, 'rttMs') ||
    (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0)
  );
}

/** True when the row passes the filter (name substring, case-insensitive; state). */
export function matches(r: SummaryRow, q: SummaryQuery): boolean {
  if (q.q && !r.peer.toLowerCase().includes(q.q.toLowerCase())) return false;
  return !q.state || peerState(r) === q.state;
}

/** The rows of a snapshot (switch counts from the history's marks since sinceWall). */
export function summaryRows(snap: Snapshot, switchesOf: (peer: string) => number): SummaryRow[] {
  return snap.peers.map((p) => ({
    peer: p.node,
    alive: p.alive,
    active: p.active,
    pairs: p.pairs,
    families: Object.fromEntries(
      Object.entries(p.families).map(([fam, f]) => [
        fam,
        {
          state: f.state,
          ...(f.metrics && f.metrics.samples > f.metrics.packet_loss * f.metrics.samples ? { rttMs: f.metrics.latency_ms } : {}),
          ...(f.metrics ? { loss: f.metrics.packet_loss } : {}),
        },
      ]),
    ),
    switches: switchesOf(p.node),
  }));
}

/** The summary over every peer now, worst first, filtered and bounded. */
export function buildSummary(parts: DaemonParts, snap: Snapshot, history: History, nowWall: number, q: SummaryQuery): Summary {
  const since = nowWall - 15 * 60_000;
  const byReason = Object.fromEntries(SWITCH_REASONS.map((r) => [r, 0])) as Record<SwitchReason, number>;
  let switchesTotal = 0;
  const rows = summaryRows(snap, (peer) => {
    let n = 0;
    for (const m of history.marksOf(peer)) {
      if (m.t <= since) continue;
      n++;
      byReason[m.class]++;
    }
    switchesTotal += n;
    return n;
  });
  const byState: Record<PeerState, number> = { up: 0, degraded: 0, blackhole: 0, probing: 0, silent: 0 };
  const pairs: Record<WireName, number> = { native: 0, ipv4: 0, ipv6: 0 };
  for (const r of rows) {
    byState[peerState(r)]++;
    for (const w of Object.keys(pairs) as WireName[]) pairs[w] += r.pairs[w];
  }
  const paths = { fast: 0, demand: 0, idle: 0 };
  for (const p of parts.peers.values()) {
    const active = parts.pairs.peerHasPairs(p.node);
    for (const path of [p.paths[4], p.paths[6]]) if (path) paths[!active ? 'idle' : (path.demand?.mode ?? 'fast')]++;
  }
  const matched = rows.filter((r) => matches(r, q)).sort(worstFirst);
  return {
    node: parts.cfg.nodeName,
    now: nowWall,
    totals: { peers: rows.length, byState, pairs, switches: { total: switchesTotal, byReason }, paths },
    matched: matched.length,
    peers: matched.slice(0, Math.max(0, Math.min(MAX_SUMMARY_ROWS, q.limit))),
  };
}
