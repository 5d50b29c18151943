/**
 * The peers etcd discovery knows: etcd keys and values in, announcement targets out. Pure (the
 * clocks are arguments): every refusal rule lives here — the MAC, a key name that is not the
 * record's node, an older record of a writer put back ('replay'), one written too long ago
 * ('stale') or too far ahead of this clock ('future') — and so do the rules for letting go:
 * a watched delete (lease expired or revoked) drops at once, while a record missing or stale
 * after a resync is dropped only once etcd has been reachable for a grace period, so an etcd
 * outage or restart never drops a target by itself.
 */

import { NODE_NAME } from '../protocol/frame';
import { decodeRecord, type NodeRecord, type RecordRejectReason, type SignedRecord } from '../protocol/record';

/** An announcement target found in etcd: an authenticated node record (capabilities: identity-v1 when it was signed by the node's identity). */
export type EtcdTarget = NodeRecord & { capabilities?: readonly string[] };

/** Why a value under the prefix was refused (cert-…: an identity record's certificate, trust/cert-book.ts). */
export type RefuseReason = RecordRejectReason | 'name' | 'replay' | 'stale' | 'future' | 'cluster-key' | `cert-${string}`;

/** How records are written and authenticated (trust/record-codec.ts); default: the cluster key. */
export interface RecordCodec {
  encode(r: SignedRecord): string;
  decode(value: Buffer | string): (SignedRecord & { capabilities?: readonly string[] }) | RefuseReason;
}

/** What a put did to the book. */
export type PutResult = 'added' | 'changed' | 'same' | 'self' | { refused: RefuseReason };

interface Entry {
  target: EtcdTarget;
  epoch: bigint;
  seq: bigint;
  writtenAt: number;
  /** Set by a resync that did not find a valid record for it. */
  absent: boolean;
}

/** Settings of a RecordBook. */
export interface BookOptions {
  /** The cluster key, when no codec is given. */
  key?: Buffer;
  codec?: RecordCodec;
  prefix: string;
  /** This node's name: its own record is never a target. */
  self: string;
  /** Records written longer ago than this (writer's clock vs ours) are refused and, while etcd is reachable, expire. */
  maxAgeMs: number;
  /** How long etcd must have been reachable before missing or stale entries are dropped. */
  graceMs: number;
}

/** Writers remembered for replay checks (after their entry is gone), at most. */
const MAX_HIGH_WATER = 65_536;

/** The authenticated records under one prefix, as announcement targets. */
export class RecordBook {
  private readonly entries = new Map<string, Entry>();
  /** Newest (epoch, seq) accepted per writer, kept past its entry's removal. */
  private readonly highWater = new Map<string, { epoch: bigint; seq: bigint; writtenAt: number }>();
  /** Refused values by reason. */
  readonly refused: Partial<Record<RefuseReason, number>> = {};

  constructor(private readonly o: BookOptions) {}

  /** The node name an etcd key stands for, or undefined when it is not prefix + a node name. */
  nameOf(etcdKey: string): string | undefined {
    if (!etcdKey.startsWith(this.o.prefix)) return undefined;
    const name = etcdKey.slice(this.o.prefix.length);
    return NODE_NAME.test(name) ? name : undefined;
  }

  /** Takes one put (watch event or resync entry); wallNow is this node's clock (ms since 1970). */
  put(etcdKey: string, value: Buffer | string, wallNow: number): PutResult {
    const r = this.judge(etcdKey, value, wallNow);
    if (typeof r === 'string') {
      this.refused[r] = (this.refused[r] ?? 0) + 1;
      return { refused: r };
    }
    if (r.node === this.o.self) return 'self';
    const old = this.entries.get(r.node);
    const hw = this.highWater.get(r.node);
    if (hw && cmp(r.epoch, r.seq, hw.epoch, hw.seq) === 0 && old) {
      old.absent = false;
      return 'same';
    }
    this.highWater.set(r.node, { epoch: r.epoch, seq: r.seq, writtenAt: r.writtenAt });
    if (this.highWater.size > MAX_HIGH_WATER) this.highWater.delete(this.highWater.keys().next().value!);
    const target: EtcdTarget = {
      node: r.node,
      addresses: r.addresses,
      port: r.port,
      families: r.families,
      ...(r.capabilities ? { capabilities: r.capabilities } : {}),
    };
    this.entries.set(r.node, { target, epoch: r.epoch, seq: r.seq, writtenAt: r.writtenAt, absent: false });
    if (!old) return 'added';
    return sameTarget(old.target, target) ? 'same' : 'changed';
  }

  /** Takes a watched delete (the lease expired or was revoked, or someone deleted the key): drops the entry at once. */
  delete(etcdKey: string): boolean {
    const name = this.nameOf(etcdKey);
    return name !== undefined && this.entries.delete(name);
  }

  /** Takes a full read of the prefix; entries it has no valid record for are marked absent (dropped later by expire). */
  resync(kvs: Iterable<{ key: string; value: Buffer | string }>, wallNow: number): void {
    const seen = new Set<string>();
    for (const kv of kvs) {
      const r = this.put(kv.key, kv.value, wallNow);
      if (r === 'added' || r === 'changed' || r === 'same') seen.add(this.nameOf(kv.key)!);
    }
    for (const [name, e] of this.entries) if (!seen.has(name)) e.absent = true;
  }

  /**
   * Drops entries absent since a resync, or whose record is older than maxAgeMs, but only when
   * etcd has been reachable for at least graceMs (reachableForMs; undefined while it is not).
   * Returns the names dropped.
   */
  expire(wallNow: number, reachableForMs: number | undefined): string[] {
    for (const [name, hw] of this.highWater)
      if (wallNow - hw.writtenAt > this.o.maxAgeMs && !this.entries.has(name)) this.highWater.delete(name);
    if (reachableForMs === undefined || reachableForMs < this.o.graceMs) return [];
    const gone: string[] = [];
    for (const [name, e] of this.entries) {
      if (e.absent || wallNow - e.writtenAt > this.o.maxAgeMs) {
        this.entries.delete(name);
        gone.push(name);
      }
    }
    return gone;
  }

  /** The current targets, by node name. */
  targets(): EtcdTarget[] {
    return [...this.entries.values()].map((e) => e.target).sort((a, b) => (a.node < b.node ? -1 : 1));
  }

  private judge(etcdKey: string, value: Buffer | string, wallNow: number) {
    const name = this.nameOf(etcdKey);
    if (name === undefined) return 'name' as const;
    const r: ReturnType<RecordCodec['decode']> = this.o.codec ? this.o.codec.decode(value) : decodeRecord(this.o.key!, value);
    if (typeof r === 'string') return r;
    if (r.node !== name) return 'name' as const;
    // Writers take a new seq for every put, so an equal (epoch, seq) is the record held (a
    // resync reading it again), or, once that entry was dropped, a copy put back: a replay.
    const hw = this.highWater.get(r.node);
    const c = hw ? cmp(r.epoch, r.seq, hw.epoch, hw.seq) : 1;
    if (c < 0 || (c === 0 && !this.entries.has(r.node))) return 'replay' as const;
    if (wallNow - r.writtenAt > this.o.maxAgeMs) return 'stale' as const;
    if (r.writtenAt - wallNow > this.o.maxAgeMs) return 'future' as const;
    return r;
  }
}

function cmp(e1: bigint, s1: bigint, e2: bigint, s2: bigint): number {
  return e1 !== e2 ? (e1 < e2 ? -1 : 1) : s1 === s2 ? 0 : s1 < s2 ? -1 : 1;
}

/** Whether two targets announce to the same place. */
export function sameTarget(a: EtcdTarget, b: EtcdTarget): boolean {
  return (
    a.node === b.node &&
    a.port === b.port &&
    a.addresses.ipv4 === b.addresses.ipv4 &&
    a.addresses.ipv6 === b.addresses.ipv6 &&
    a.families.join() === b.families.join()
  );
}

/** What changed between two target lists (by node name): for logs and for a daemon that acts on changes. */
export function diffTargets(
  prev: readonly EtcdTarget[],
  next: readonly EtcdTarget[],
): { added: string[]; removed: string[]; changed: string[] } {
  const p = new Map(prev.map((t) => [t.node, t]));
  const n = new Map(next.map((t) => [t.node, t]));
  return {
    added: [...n.keys()].filter((k) => !p.has(k)),
    removed: [...p.keys()].filter((k) => !n.has(k)),
    changed: [...n.keys()].filter((k) => p.has(k) && !sameTarget(p.get(k)!, n.get(k)!)),
  };
}
