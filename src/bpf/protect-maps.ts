/**
 * Codecs of the protection maps (afsteer_protect, afsteer_dup_budget, afsteer_protect_stats):
 * struct layouts in maps-layout.ts, written only through the SteeringWriter.
 */
import { DupBudgetLayout, ProtectLayout, ProtectStat } from './maps-layout';

/** What this node does for a protected pair: nothing, deduplicate what arrives, or also send both copies. */
export type ProtectionMode = 'off' | 'dedup' | 'send';

/** A protected pair's counters (struct afsteer_protect, without the window). */
export interface ProtectCounters {
  /** Next sequence number this node sends. */
  txSeq: number;
  /** Marked copies delivered, dropped as duplicates, dropped as older than the window. */
  rxFirst: bigint;
  rxDup: bigint;
  rxOld: bigint;
  /** Second copies sent and their bytes; packets sent once because the budget was spent. */
  dupPackets: bigint;
  dupBytes: bigint;
  dupCapped: bigint;
}

/** Decodes the counters of an afsteer_protect value. */
export function decodeProtect(b: Buffer): ProtectCounters {
  if (b.length < ProtectLayout.size) throw new Error(`protect value is ${b.length} bytes, want ${ProtectLayout.size}`);
  const f = ProtectLayout.fields;
  const u64 = (o: { offset: number }) => b.readBigUInt64LE(o.offset);
  return {
    txSeq: b.readUInt32LE(f.tx_seq.offset),
    rxFirst: u64(f.rx_first),
    rxDup: u64(f.rx_dup),
    rxOld: u64(f.rx_old),
    dupPackets: u64(f.dup_packets),
    dupBytes: u64(f.dup_bytes),
    dupCapped: u64(f.dup_capped),
  };
}

/** Encodes the duplication budget: rate bytes/s, burst bytes, the bucket full. */
export function encodeDupBudget(rateBytesPerSec: number, burstBytes: number): Buffer {
  const b = Buffer.alloc(DupBudgetLayout.size);
  const f = DupBudgetLayout.fields;
  b.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(rateBytesPerSec))), f.rate.offset);
  b.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(burstBytes))), f.burst.offset);
  b.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(burstBytes))), f.tokens.offset);
  return b;
}

/** Decodes the budget's rate and burst. */
export function decodeDupBudget(b: Buffer): { rate: bigint; burst: bigint } {
  return { rate: b.readBigUInt64LE(DupBudgetLayout.fields.rate.offset), burst: b.readBigUInt64LE(DupBudgetLayout.fields.burst.offset) };
}

/** Node-wide protection counters by name. */
export type ProtectStats = Record<keyof typeof ProtectStat, bigint>;

/** Sums the per-CPU values of afsteer_protect_stats (lookup(i) gives cpus × u64). */
export function sumProtectStats(lookup: (i: number) => Buffer | undefined, cpus: number): ProtectStats {
  const out = Object.fromEntries(Object.keys(ProtectStat).map((k) => [k, 0n])) as ProtectStats;
  for (const [name, i] of Object.entries(ProtectStat) as [keyof typeof ProtectStat, number][]) {
    const v = lookup(i);
    if (!v) continue;
    for (let c = 0; c < cpus && (c + 1) * 8 <= v.length; c++) out[name] += v.readBigUInt64LE(c * 8);
  }
  return out;
}
