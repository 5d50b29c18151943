/**
 * The last 15 minutes of each peer's per-family RTT, loss and state, one sample a second on one
 * shared timeline (a ring of sample times; each peer-family a ring of float32 values at the same
 * slots), and its switches with their reasons. Memory: about 9 KB per peer and family.
 */
import type { FamilyName } from '../../net/family';
import type { SwitchEvent } from '../pairs/switch-log';
import type { Snapshot } from './snapshot';
import { FAMILY_STATES, type FamilyState, type SwitchReason, switchReason } from './vocabulary';

/** How far back the history goes. */
export const HISTORY_MS = 15 * 60_000;
/** Sample period. */
export const HISTORY_STEP_MS = 1000;
/** Samples kept. */
export const HISTORY_SLOTS = HISTORY_MS / HISTORY_STEP_MS;
/** Switch markers kept per peer (the newest). */
export const SWITCHES_PER_PEER = 200;

interface Series {
  rtt: Float32Array;
  loss: Float32Array;
  state: Uint8Array;
}

/** A switch marker. */
export interface SwitchMark {
  t: number;
  pair: string;
  from: string;
  to: string;
  reason: string;
  class: SwitchReason;
}

/** One peer's history as served: times (wall ms), per family RTT in ms (null: none), loss ratio, state. */
export interface PeerHistory {
  peer: string;
  t: number[];
  families: Partial<Record<FamilyName, { rtt: (number | null)[]; loss: (number | null)[]; state: (FamilyState | null)[] }>>;
  switches: SwitchMark[];
}

const NO_STATE = 255;

/** The bounded history of every peer. */
export class History {
  private readonly times = new Float64Array(HISTORY_SLOTS).fill(NaN);
  /** Next slot to write. */
  private head = 0;
  private readonly series = new Map<string, Partial<Record<FamilyName, Series>>>();
  private readonly marks = new Map<string, SwitchMark[]>();

  /** Records one sample of every peer at wall time t (ms since 1970). Peers gone for the whole window are forgotten. */
  sample(t: number, snap: Snapshot): void {
    const slot = this.head;
    this.head = (this.head + 1) % HISTORY_SLOTS;
    this.times[slot] = t;
    const seen = new Set<string>();
    for (const p of snap.peers) {
      seen.add(p.node);
      let s = this.series.get(p.node);
      if (!s) this.series.set(p.node, (s = {}));
      for (const [fam, f] of Object.entries(p.families) as [FamilyName, NonNullable<typeof p.families.IPv4>][]) {
        let ser = s[fam];
        if (!ser)
          ser = s[fam] = {
            rtt: new Float32Array(HISTORY_SLOTS).fill(NaN),
            loss: new Float32Array(HISTORY_SLOTS).fill(NaN),
            state: new Uint8Array(HISTORY_SLOTS).fill(NO_STATE),
          };
        const rttOk = f.metrics && f.metrics.samples > f.metrics.packet_loss * f.metrics.samples;
        ser.rtt[slot] = rttOk ? f.metrics!.latency_ms : NaN;
        ser.loss[slot] = f.metrics ? f.metrics.packet_loss : NaN;
        ser.state[slot] = FAMILY_STATES.indexOf(f.state);
      }
    }
    for (const [node, s] of this.series) {
      if (seen.has(node)) continue;
      for (const ser of Object.values(s)) {
        ser.rtt[slot] = NaN;
        ser.loss[slot] = NaN;
        ser.state[slot] = NO_STATE;
      }
      if (ser_empty(s) && !this.marks.get(node)?.some((m) => m.t > t - HISTORY_MS)) {
        this.series.delete(node);
        this.marks.delete(node);
      }
    }
  }

  /** Records a switch (wall time t). */
  addSwitch(t: number, ev: SwitchEvent): void {
    let m = this.marks.get(ev.peer);
    if (!m) this.marks.set(ev.peer, (m = []));
    m.push({ t, pair: ev.pair, from: ev.from, to: ev.to, reason: ev.reason, class: switchReason(ev.reason) });
    if (m.length > SWITCHES_PER_PEER) m.splice(0, m.length - SWITCHES_PER_PEER);
  }

  /** A peer's switch markers kept (the newest SWITCHES_PER_PEER), oldest first. */
  marksOf(peer: string): readonly SwitchMark[] {
    return this.marks.get(peer) ?? [];
  }

  /** Peers with history. */
  peers(): string[] {
    return [...new Set([...this.series.keys(), ...this.marks.keys()])].sort();
  }

  /** The newest sample's time (wall ms), NaN before the first. */
  latest(): number {
    return this.times[(this.head + HISTORY_SLOTS - 1) % HISTORY_SLOTS]!;
  }

  /** A peer's samples and switches newer than since (wall ms) and within HISTORY_MS of now (default: the newest sample), oldest first. */
  of(peer: string, since = -Infinity, now = this.latest()): PeerHistory {
    const s = this.series.get(peer) ?? {};
    const slots: number[] = [];
    for (let i = 0; i < HISTORY_SLOTS; i++) {
      const slot = (this.head + i) % HISTORY_SLOTS;
      const t = this.times[slot]!;
      if (!Number.isNaN(t) && t > since && t > now - HISTORY_MS) slots.push(slot);
    }
    const num = (x: number) => (Number.isNaN(x) ? null : Math.round(x * 1000) / 1000);
    const families: PeerHistory['families'] = {};
    for (const [fam, ser] of Object.entries(s) as [FamilyName, Series][]) {
      families[fam] = {
        rtt: slots.map((i) => num(ser.rtt[i]!)),
        loss: slots.map((i) => num(ser.loss[i]!)),
        state: slots.map((i) => (ser.state[i] === NO_STATE ? null : FAMILY_STATES[ser.state[i]!]!)),
      };
    }
    const switches = (this.marks.get(peer) ?? []).filter((m) => m.t > since && m.t > now - HISTORY_MS);
    return { peer, t: slots.map((i) => this.times[i]!), families, switches };
  }
}

function ser_empty(s: Partial<Record<FamilyName, Series>>): boolean {
  for (const ser of Object.values(s)) for (const v of ser.state) if (v !== NO_STATE) return false;
  return true;
}
