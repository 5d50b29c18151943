/**
 * What an operator watches, over the daemon's parts: the history (sampled once a second), one log
 * line per peer up/down and per family state change, and dropped datagrams as one summary line
 * per DROP_SUMMARY_MS at most (never a line per packet or probe). Started beside the daemon.
 */
import { log } from '../../util/log';
import type { Cancel } from '../clock';
import type { DaemonParts } from './daemon-view';
import { HISTORY_STEP_MS, History } from './history';
import { takeSnapshot } from './snapshot';
import type { FamilyState } from './vocabulary';

/** Longest gap between two dropped-datagram summaries while drops go on. */
export const DROP_SUMMARY_MS = 10_000;

/** The observer of one daemon. */
export class Observer {
  /** The last 15 minutes. */
  readonly history = new History();
  private readonly states = new Map<string, FamilyState>();
  private readonly up = new Set<string>();
  private lastDrops: Record<string, number> = {};
  private lastSummaryAt = 0;
  private cancel?: Cancel;

  constructor(private readonly parts: DaemonParts) {
    parts.switches.listeners.push((ev) => this.history.addSwitch(this.wallMs(), ev));
  }

  private wallMs(): number {
    return Date.parse(this.parts.clock.wallIso());
  }

  /** Starts sampling every second. */
  start(): void {
    this.lastSummaryAt = this.parts.clock.now();
    this.cancel = this.parts.clock.every(HISTORY_STEP_MS, () => {
      try {
        this.sample();
      } catch (err) {
        log.error('internal error in the observer', { error: String((err as Error).stack ?? err) });
      }
    });
  }

  /** Stops sampling. */
  stop(): void {
    this.cancel?.();
  }

  /** One sample: history, state-change lines, and a drop summary when due. */
  sample(): void {
    const snap = takeSnapshot(this.parts);
    this.history.sample(this.wallMs(), snap);
    const present = new Set<string>();
    for (const p of snap.peers) {
      present.add(p.node);
      if (p.alive && !this.up.has(p.node)) {
        this.up.add(p.node);
        log.info('peer up', { peer: p.node });
      } else if (!p.alive && this.up.delete(p.node)) {
        log.warn('peer down', { peer: p.node });
      }
      for (const [family, f] of Object.entries(p.families)) {
        const k = `${p.node}|${family}`;
        const was = this.states.get(k);
        if (was === f.state) continue;
        this.states.set(k, f.state);
        if (was === undefined && f.state === 'probing') continue;
        const fields = {
          peer: p.node,
          family,
          from: was ?? 'new',
          to: f.state,
          ...(f.metrics ? { rttMs: f.metrics.latency_ms, loss: f.metrics.packet_loss } : {}),
        };
        if (f.state === 'blackhole' || f.state === 'degraded') log.warn('family state', fields);
        else log.info('family state', fields);
      }
    }
    for (const node of [...this.up]) {
      if (present.has(node)) continue;
      this.up.delete(node);
      log.warn('peer down', { peer: node, why: 'aged out' });
    }
    for (const k of [...this.states.keys()]) if (!present.has(k.slice(0, k.lastIndexOf('|')))) this.states.delete(k);
    this.summariseDrops();
  }

  private summariseDrops(): void {
    const now = this.parts.clock.now();
    if (now - this.lastSummaryAt < DROP_SUMMARY_MS) return;
    const drops = this.parts.counters.drops;
    const delta: Record<string, number> = {};
    let total = 0;
    for (const [k, v] of Object.entries(drops)) {
      const d = v - (this.lastDrops[k] ?? 0);
      if (d > 0) {
        delta[k] = d;
        total += d;
      }
    }
    if (total === 0) return;
    log.warn('datagrams dropped', { total, byReason: delta, overMs: Math.round(now - this.lastSummaryAt) });
    this.lastDrops = { ...drops };
    this.lastSummaryAt = now;
  }
}
