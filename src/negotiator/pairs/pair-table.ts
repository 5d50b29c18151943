/** The pair table: every negotiated pair by key ("local|remote"), indexed by peer node so per-peer work never scans all pairs. */
import type { PairState } from './pair';

/** Pairs by key and by peer. */
export class PairTable {
  private readonly byKey = new Map<string, PairState>();
  private readonly byPeer = new Map<string, Set<string>>();

  /** The pair with this key. */
  get(k: string): PairState | undefined {
    return this.byKey.get(k);
  }

  /** True when the pair exists. */
  has(k: string): boolean {
    return this.byKey.has(k);
  }

  /** Stores (or replaces) a pair. */
  set(k: string, p: PairState): void {
    const old = this.byKey.get(k);
    if (old && old.peerNode !== p.peerNode) this.unindex(k, old.peerNode);
    this.byKey.set(k, p);
    let s = this.byPeer.get(p.peerNode);
    if (!s) this.byPeer.set(p.peerNode, (s = new Set()));
    s.add(k);
  }

  /** Removes a pair; returns it. */
  delete(k: string): PairState | undefined {
    const p = this.byKey.get(k);
    if (!p) return undefined;
    this.byKey.delete(k);
    this.unindex(k, p.peerNode);
    return p;
  }

  /** Every pair with its key. */
  entries(): IterableIterator<[string, PairState]> {
    return this.byKey.entries();
  }

  /** Every pair. */
  values(): IterableIterator<PairState> {
    return this.byKey.values();
  }

  /** The pairs with a peer, with their keys (a snapshot: safe to change the table meanwhile). */
  ofPeer(node: string): [string, PairState][] {
    return [...(this.byPeer.get(node) ?? [])].map((k) => [k, this.byKey.get(k)!]);
  }

  /** The pairs with a peer, as they are (no snapshot: do not change the table while iterating). */
  *pairsOfPeer(node: string): IterableIterator<PairState> {
    for (const k of this.byPeer.get(node) ?? []) yield this.byKey.get(k)!;
  }

  /** True when the peer has at least one pair. */
  peerHasPairs(node: string): boolean {
    return (this.byPeer.get(node)?.size ?? 0) > 0;
  }

  /** Number of pairs. */
  get size(): number {
    return this.byKey.size;
  }

  private unindex(k: string, node: string): void {
    const s = this.byPeer.get(node);
    s?.delete(k);
    if (s && s.size === 0) this.byPeer.delete(node);
  }
}
