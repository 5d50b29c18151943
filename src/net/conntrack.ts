/**
 * Per-flow conntrack handling of steered pairs: afsteer never changes a node-wide conntrack
 * setting (nf_conntrack_tcp_be_liberal stays what the node's owner chose). While a pair is
 * steered its packets cross this node's netfilter as the outer packet of the other family, so
 * the inner flows' conntrack entries see nothing; when the pair comes back to native their
 * windows are stale and strict tracking would mark the next segments INVALID — which kube-proxy's
 * `ct state invalid drop` drops. So each time a pair's route is written, its TCP entries on this
 * node (both directions: either pod may have opened the connection, both families) get
 * IP_CT_TCP_FLAG_BE_LIBERAL on both sides, as nf_flow_offload and act_ct do for flows whose
 * packets conntrack will not all see. Liberal still marks out-of-window RSTs INVALID; other flows,
 * pods' and the host's, keep strict tracking. Flows that start while the pair is steered have no
 * entry here; their first native segment makes one by mid-stream pick-up, which the kernel makes
 * liberal itself (nf_conntrack_tcp_loose, on by default).
 */
import { ConntrackSocket, type CtEntry, IPPROTO_TCP, TCP_FLAG_BE_LIBERAL } from './ctnetlink';
import type { Family } from './family';
import { canonical } from './ip';

/** A steered pair's addresses: the local pod's and the remote pod's. */
export interface PairAddresses {
  local: { ipv4?: string; ipv6?: string };
  remote: { ipv4: string; ipv6: string };
}

/** What one marking did. */
export interface LiberalMarkResult {
  /** The pair's TCP entries found. */
  found: number;
  /** Entries made liberal now. */
  marked: number;
  /** Entries already liberal both ways (nothing written). */
  already: number;
  /** Entries gone between the dump and the update (expired, deleted): nothing to do. */
  vanished: number;
  /** Time the marking took, ms. */
  ms: number;
}

/** Totals since start (metrics). */
export interface PairConntrackStats {
  /** Markings run (one per batch of route writes: the pairs written in one turn of the event loop). */
  markings: number;
  found: number;
  marked: number;
  already: number;
  vanished: number;
  /** Markings that failed (a timeout, a refused request): the pair's switch still happened. */
  failures: number;
  /** Time of the last marking and the slowest, ms. */
  lastMs: number;
  maxMs: number;
}

/** Per family, the directed address pairs whose original direction can name one of the pair's connections. */
export function pairTuples(p: PairAddresses): { family: Family; tuples: { src: string; dst: string }[] }[] {
  const out: { family: Family; tuples: { src: string; dst: string }[] }[] = [];
  for (const [family, l, r] of [
    [4, p.local.ipv4, p.remote.ipv4],
    [6, p.local.ipv6, p.remote.ipv6],
  ] as const) {
    if (l)
      out.push({
        family,
        tuples: [
          { src: l, dst: r },
          { src: r, dst: l },
        ],
      });
  }
  return out;
}

/** True when both directions of a TCP entry are already liberal. */
export function isLiberal(e: CtEntry): boolean {
  return e.tcpFlags !== undefined && (e.tcpFlags.original & e.tcpFlags.reply & TCP_FLAG_BE_LIBERAL) !== 0;
}

/** The TCP entries of a pair on this node (every original direction it can have). */
export function pairEntries(ct: ConntrackSocket, p: PairAddresses): CtEntry[] {
  return pairsEntries(ct, [p]);
}

/**
 * The TCP entries of several pairs on this node, each once. Each dump walks the kernel's whole
 * conntrack hash table (every bucket, every namespace's entries: ~9.5 ms of CPU at 262,144
 * buckets on a 2-vCPU VM), so the IPv4 address pairs (a dump each, filtered in the kernel) are
 * dumped once however many pairs share them, and IPv6 (filtered here, see ConntrackSocket.dump)
 * once for all.
 */
export function pairsEntries(ct: ConntrackSocket, pairs: PairAddresses[]): CtEntry[] {
  const out: CtEntry[] = [];
  for (const family of [4, 6] as const) {
    const byKey = new Map<string, { src: string; dst: string }>();
    for (const p of pairs)
      for (const t of pairTuples(p))
        if (t.family === family) for (const u of t.tuples) byKey.set(`${canonical(u.src)}|${canonical(u.dst)}`, u);
    if (byKey.size) out.push(...ct.dump(family, IPPROTO_TCP, [...byKey.values()]));
  }
  return out;
}

/** Marks the entries liberal in both directions (those not already so); an entry that vanished meanwhile is counted, not an error. */
export function markLiberal(ct: ConntrackSocket, entries: CtEntry[]): Omit<LiberalMarkResult, 'ms'> {
  const r = { found: entries.length, marked: 0, already: 0, vanished: 0 };
  for (const e of entries) {
    if (isLiberal(e)) r.already++;
    else if (ct.setTcpFlags(e, TCP_FLAG_BE_LIBERAL, TCP_FLAG_BE_LIBERAL) === 'gone') r.vanished++;
    else r.marked++;
  }
  return r;
}

/**
 * The steering writer's conntrack side: a ctnetlink socket in the namespace that forwards the
 * pods' packets (the one the writer was opened in), and the totals. Never throws: conntrack is
 * the node's, a failure to mark is counted and reported, and the switch it follows stands.
 */
export class PairConntrack {
  readonly stats: PairConntrackStats = { markings: 0, found: 0, marked: 0, already: 0, vanished: 0, failures: 0, lastMs: 0, maxMs: 0 };
  /** Why the last marking failed, if it did. */
  lastError?: Error;

  constructor(private readonly ct: ConntrackSocket) {}

  /** Opens a ctnetlink socket in this thread's network namespace; undefined (with the reason) when it cannot. */
  static open(timeoutMs = 1000): { conntrack?: PairConntrack; error?: Error } {
    try {
      return { conntrack: new PairConntrack(ConntrackSocket.open(timeoutMs)) };
    } catch (err) {
      return { error: new Error('cannot open a ctnetlink socket: per-flow conntrack marking is off', { cause: err }) };
    }
  }

  /** Marks the pair's TCP entries liberal; the result, or undefined when it failed (counted, lastError set). */
  markPair(p: PairAddresses): LiberalMarkResult | undefined {
    return this.markPairs([p]);
  }

  /** Marks the TCP entries of several pairs liberal in one go (IPv6 dumped once for all, each IPv4 address pair once); as markPair. */
  markPairs(pairs: PairAddresses[]): LiberalMarkResult | undefined {
    const t0 = performance.now();
    this.stats.markings++;
    try {
      const r = markLiberal(this.ct, pairsEntries(this.ct, pairs));
      const ms = performance.now() - t0;
      this.stats.found += r.found;
      this.stats.marked += r.marked;
      this.stats.already += r.already;
      this.stats.vanished += r.vanished;
      this.stats.lastMs = ms;
      this.stats.maxMs = Math.max(this.stats.maxMs, ms);
      return { ...r, ms };
    } catch (err) {
      this.stats.failures++;
      this.lastError = err as Error;
      return undefined;
    }
  }

  /** Closes the socket. */
  close(): void {
    this.ct.close();
  }
}
