/**
 * Pair protection on this node: the agreed mode of each pair (protect-rules.ts), on-suspicion's
 * state, what this node writes (SteeringWriter.setProtection: off / dedup / send), what it tells
 * the peer in the pair message (its mode, its window, whether it duplicates), the node-wide
 * duplication budget, and the figures status shows. A failing map write is logged and retried
 * at the next reconcile, never thrown.
 */
import type { ProtectCounters, ProtectionMode } from '../../bpf/protect-maps';
import type { SteeringWriter } from '../../bpf/steering-writer';
import { FAMILIES, familyName } from '../../net/family';
import type { Policy, ProtectMode } from '../../policy/schema';
import { log } from '../../util/log';
import type { Clock } from '../clock';
import { count, type DaemonCounters } from '../counters';
import type { DaemonConfig } from '../daemon-config';
import type { Peer } from '../discovery/peers';
import { type PairState, pairKey } from '../pairs/pair';
import {
  agreedProtect,
  DEDUP_CAPABILITY,
  familiesInUse,
  familyTrouble,
  localProtection,
  type PairProtection,
  peerStartedTrouble,
  stepSuspicion,
} from './protect-rules';

/** The protect fields of this node's pair message (sent only to peers that announce DEDUP_CAPABILITY). */
export interface ProtectAdvert {
  protect: ProtectMode;
  dedup: boolean;
  dup: boolean;
}

/** One pair's protection as status shows it. */
export interface PairProtectStatus {
  protect: ProtectMode;
  written: ProtectionMode;
  duplicating: boolean;
  peerDedup: boolean;
  peerDuplicating: boolean;
  suspicion: string | null;
  counters: Record<keyof ProtectCounters, number> | null;
}

/** This node's part of protection. */
export class Protection {
  /** Called when what this node tells a peer changed (the daemon negotiates soon). */
  onAdvertChange: (peer: Peer) => void = (peer) => {
    peer.negotiateDue = true;
  };

  constructor(
    private readonly cfg: DaemonConfig,
    private readonly clock: Clock,
    private readonly writer: SteeringWriter,
    private readonly counters: DaemonCounters,
  ) {}

  /** This node deduplicates (announces DEDUP_CAPABILITY). */
  get enabled(): boolean {
    return this.cfg.protection.dedup;
  }

  /** The capabilities this node adds to its announcement. */
  capabilities(): string[] {
    return this.enabled ? [DEDUP_CAPABILITY] : [];
  }

  /** True when the peer understands the protect fields (both nodes deduplicate). */
  speaksTo(peer: Peer | undefined): boolean {
    return this.enabled && Boolean(peer?.capabilities.includes(DEDUP_CAPABILITY));
  }

  /** The budget's burst: configured, else a tenth of a second of the rate (64 KiB at least). */
  burstBytes(): number {
    const p = this.cfg.protection;
    return p.burstBytes ?? Math.max(65_536, Math.round(p.budgetBytesPerSecond / 10));
  }

  /** Writes the node-wide duplication budget (start-up). */
  applyBudget(): void {
    const rate = this.enabled ? this.cfg.protection.budgetBytesPerSecond : 0;
    try {
      if (!this.writer.setDupBudget(rate, this.enabled ? this.burstBytes() : 0))
        log.warn('pins predate protected pairs: no duplication budget written');
    } catch (err) {
      log.error('cannot write the duplication budget', { error: (err as Error).message });
    }
  }

  /** Brings a pair's protection to what its state calls for. */
  reconcile(p: PairState, peer: Peer | undefined): void {
    const now = this.clock.now();
    const capable = this.speaksTo(peer);
    const st: PairProtection = p.protection ?? (p.protection = { mode: 'off', written: this.inMaps(p), suspicion: {}, suspect: false });
    const before = this.advert(p);
    st.mode = agreedProtect({
      leader: p.leader,
      own: p.policy.protect,
      peerPolicy: p.peer?.policy.protect,
      leaderSays: p.peer?.protect,
      capable,
    });
    if (st.lastWire !== p.wire) {
      if (st.lastWire !== undefined) st.lastSwitchAt = now;
      st.lastWire = p.wire;
    }
    if (st.mode === 'on-suspicion') {
      const fresh = p.peer && now - p.peer.at <= this.cfg.timers.peerTimeoutMs ? p.peer.metrics : undefined;
      let trouble: string | undefined;
      const inUse = familiesInUse(p.wire);
      for (const f of FAMILIES) {
        const name = familyName(f);
        if (!inUse.includes(name)) continue;
        const t = familyTrouble(peer?.paths[f], fresh?.[name], now, this.cfg.protection.settleMs);
        if (t) {
          trouble = `${name}: ${t}`;
          break;
        }
      }
      // The peer just began duplicating: its probes saw trouble first; this end's copies (the
      // other direction: a stream's ACKs) start now rather than at its own second lost probe.
      trouble ??= peerStartedTrouble(st.peerDup, Boolean(p.peer?.dup));
      const wasSuspect = st.suspect;
      const s = stepSuspicion(st.suspicion, trouble, st.lastSwitchAt, now, this.cfg.protection.settleMs);
      st.suspicion = s.state;
      st.suspect = s.suspect;
      if (s.suspect !== wasSuspect) {
        count(this.counters.events, s.suspect ? 'protect-suspicion' : 'protect-settled');
        log.info(s.suspect ? 'protection: suspicion, duplicating' : 'protection: settled, duplication stops', {
          pair: pairKey(p.localCnf, p.remoteCnf),
          reason: st.suspicion.reason ?? 'healthy',
        });
      }
    } else {
      st.suspicion = {};
      st.suspect = false;
    }
    st.peerDup = Boolean(p.peer?.dup);
    const fresh = p.peer !== undefined && now - p.peer.at <= this.cfg.timers.peerTimeoutMs;
    const view =
      capable && p.peer ? { dedup: Boolean(p.peer.dedup) && fresh, dup: Boolean(p.peer.dup), decap: p.peer.decap && fresh } : undefined;
    const want = localProtection(st.mode, st.suspect, view);
    if (want !== st.written) this.write(p, st, want);
    const after = this.advert(p);
    if (peer && (before?.dedup !== after?.dedup || before?.dup !== after?.dup || before?.protect !== after?.protect))
      this.onAdvertChange(peer);
  }

  /** Every pair of a peer reconciled (a probe toward it was just lost). */
  review(peer: Peer, pairs: Iterable<PairState>): void {
    for (const p of pairs) this.reconcile(p, peer);
  }

  /** What this node tells the peer of the pair's protection. */
  advert(p: PairState): ProtectAdvert | undefined {
    const st = p.protection;
    if (!st) return undefined;
    return { protect: st.mode, dedup: st.mode !== 'off' && st.written !== 'off', dup: st.written === 'send' };
  }

  /** The pair's policy as a peer without DEDUP_CAPABILITY may see it (its strict schema has no protect). */
  static legacyPolicy(policy: Policy): Policy {
    const { protect: _, ...rest } = policy;
    return rest;
  }

  /** One pair for status. */
  status(p: PairState): PairProtectStatus {
    const st = p.protection;
    let c: ProtectCounters | undefined;
    try {
      c = st && st.written !== 'off' ? this.writer.protectCounters(p.ifindex, p.remote.ipv6) : undefined;
    } catch {
      c = undefined;
    }
    return {
      protect: st?.mode ?? 'off',
      written: st?.written ?? 'off',
      duplicating: st?.written === 'send',
      peerDedup: Boolean(p.peer?.dedup),
      peerDuplicating: Boolean(p.peer?.dup),
      suspicion: st?.suspect ? (st.suspicion.reason ?? 'settling') : null,
      counters: c ? (Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Number(v)])) as Record<keyof ProtectCounters, number>) : null,
    };
  }

  private write(p: PairState, st: PairProtection, want: ProtectionMode): void {
    const k = pairKey(p.localCnf, p.remoteCnf);
    try {
      // No route (yet) or pins from before protected pairs: left as it is, tried again at the next reconcile.
      if (!this.writer.setProtection(p.ifindex, p.remote.ipv6, want)) return;
    } catch (err) {
      log.error('cannot write protection', { pair: k, mode: want, error: (err as Error).message });
      return;
    }
    const from = st.written;
    st.written = want;
    count(this.counters.events, `protect-${want}`);
    log.info('protection', { pair: k, peer: p.peerNode, mode: st.mode, from, to: want });
  }

  /** What the maps hold for a pair this node has not reconciled yet (a previous run's, adopted): send, dedup or off. */
  private inMaps(p: PairState): ProtectionMode {
    try {
      if (this.writer.getPair(p.ifindex, p.remote.ipv6)?.protect) return 'send';
      return this.writer.protectCounters(p.ifindex, p.remote.ipv6) ? 'dedup' : 'off';
    } catch {
      return 'off';
    }
  }
}
