/**
 * Probing: on each tick, expire the probes of the peers' paths (blackhole detection), send the
 * ones due (fast toward peers with pairs, slow otherwise), and take in replies. Each tick visits
 * only the fast set (peers with pairs); every SCAN_EVERY-th tick visits every peer and rebuilds
 * that set, so the work per tick grows with active peers, not with all peers (an idle peer's
 * probe goes out, and is found lost, within SCAN_EVERY ticks of when it is due). The window,
 * metrics and blackhole rules are in probe-path.ts; this holds the tick and the sockets' side.
 */

import { addressOf, FAMILIES, type Family, familyName } from '../../net/family';
import { log } from '../../util/log';
import { count, type DaemonCounters } from '../counters';
import type { Peer } from '../discovery/peers';
import type { PairMetrics } from '../pairs/selection';
import { echoPortOf, encodeEcho } from '../protocol/echo';
import { encodeProbe, type Probe } from '../protocol/probe';
import type { Sender } from '../transport/sender';
import {
  expireProbes,
  type PathState,
  type ProbeParams,
  pathMetrics,
  probeDue,
  probeSentEvery,
  probeSoon,
  probeTimeout,
  replyReceived,
} from './probe-path';
import { type DemandParams, demandProbeSent, demandStep, newDemandState, type PathTraffic } from './traffic-proof';

/** Capability of a peer that reflects echo probes (protocol/echo.ts) on its port + 1. */
export const ECHO_CAPABILITY = 'echo-v1';

/** True when probes to peer go as echoes. */
export function usesEcho(peer: Peer): boolean {
  return peer.capabilities?.includes(ECHO_CAPABILITY) ?? false;
}

/** Every how many ticks all peers are visited (the others visit only the fast set). */
export const SCAN_EVERY = 10;

/** What the prober is built from. */
export interface ProberDeps {
  prm: ProbeParams & { minSamples: number };
  /** The probe tick period (probeTickMs, below). */
  tickMs: number;
  sender: Sender;
  counters: DaemonCounters;
  /** Called once per tick for each peer where a probe was just counted lost (protection's first sign of trouble). */
  onProbeLost?: (peer: Peer) => void;
  /**
   * Demand-style probing (traffic-proof.ts): its parameters, and what the data plane saw of the
   * peer's pairs per wire family at time now (undefined: no evidence, the peer is probed fast).
   * Absent: peers with pairs are always probed fast.
   */
  demand?: { prm: DemandParams; trafficOf: (peer: Peer, now: number) => { 4?: PathTraffic; 6?: PathTraffic } | undefined };
  /**
   * The clock read when a probe is handed to the sender (default: the tick's time). The sender
   * is flushed every FLUSH_EVERY probes, so a probe's send time is within a few µs of when it
   * leaves, not the start of a tick that visits a thousand peers.
   */
  sendClock?: () => number;
}

/** Probes queued before the sender is flushed within a tick. */
export const FLUSH_EVERY = 32;

/** The prober of one daemon. */
export class Prober {
  private lastTickAt = 0;
  private skippedExpiry = false;
  private ticks = 0;
  /** Peers visited on every tick: those with pairs at the last full scan, or hurried since. */
  private readonly fast = new Set<Peer>();

  private readonly prm: ProbeParams & { minSamples: number };
  /** The probe tick period (probeTickMs, below). */
  readonly tickMs: number;
  private readonly sender: Sender;
  private readonly counters: DaemonCounters;
  private readonly onProbeLost: (peer: Peer) => void;
  private readonly demand: ProberDeps['demand'];
  private readonly sendClock: (() => number) | undefined;

  constructor(deps: ProberDeps) {
    this.demand = deps.demand;
    this.sendClock = deps.sendClock;
    this.prm = deps.prm;
    this.tickMs = deps.tickMs;
    this.sender = deps.sender;
    this.counters = deps.counters;
    this.onProbeLost = deps.onProbeLost ?? (() => {});
  }

  /** One tick: returns the peers where a path just turned blackhole. */
  tick(peers: Iterable<Peer>, isActive: (peer: Peer) => boolean, now: number): Peer[] {
    const { expire, stalled } = probeExpiry(this.lastTickAt, this.skippedExpiry, now, this.tickMs, this.prm.minTimeoutMs);
    this.lastTickAt = now;
    this.skippedExpiry = !expire;
    if (stalled && !expire) count(this.counters.events, 'event-loop-stall');
    const changed: Peer[] = [];
    let queued = 0;
    const scan = this.ticks++ % SCAN_EVERY === 0;
    if (scan) this.fast.clear();
    for (const peer of scan ? peers : this.fast) {
      const active = isActive(peer);
      if (scan && active) this.fast.add(peer);
      // An idle peer with nothing in flight and no probe due: nothing to do (most of a scan at cluster size).
      if (!active && restsUntilLater(peer.paths[4], now) && restsUntilLater(peer.paths[6], now)) continue;
      let blackholed = false;
      let lost = false;
      const traffic = active && this.demand ? this.demand.trafficOf(peer, now) : undefined;
      for (const f of FAMILIES) {
        const path = peer.paths[f];
        const to = addressOf(peer.addresses, f);
        if (!path || !to) continue;
        const lostBefore = path.consecutiveLost;
        if (expire && expireProbes(path, now, this.prm)) {
          log.warn('blackhole', { peer: peer.node, family: familyName(f), consecutiveLost: path.consecutiveLost });
          blackholed = true;
        }
        const lostNow = path.consecutiveLost > lostBefore;
        if (lostNow) lost = true;
        let interval = active ? this.prm.activeIntervalMs : this.prm.idleIntervalMs;
        if (active && this.demand) {
          // A peer with pairs: probed fast unless its pairs' own traffic proves the path (traffic-proof.ts).
          path.demand ??= newDemandState();
          const d = demandStep(
            path.demand,
            {
              traffic: traffic?.[f],
              blackhole: path.blackhole,
              samples: path.outcomes.length,
              minSamples: this.prm.minSamples,
              lost: lostNow,
              timeoutMs: probeTimeout(path, this.prm, now),
            },
            now,
            this.demand.prm,
          );
          if (d.probeNow) probeSoon(path, now);
          interval = d.intervalMs;
        }
        if (probeDue(path, now)) {
          if (++queued % FLUSH_EVERY === 0) this.sender.flush();
          const id = probeSentEvery(path, now, interval, this.sendClock?.() ?? now);
          if (path.demand) demandProbeSent(path.demand);
          const probe: Probe = { family: f, active, id, t1: BigInt(Math.round(now * 1000)), nonce: path.nonce };
          // A peer with a reflector gets echoes (looped back by its kernel); an older one MACed probes its afsteerd answers.
          if (usesEcho(peer)) this.sender.raw(f, to, echoPortOf(peer.port), encodeEcho(probe), 'echo');
          else this.sender.to(f, to, peer.port, 'probe', encodeProbe(probe), peer.node);
        }
      }
      if (blackholed) changed.push(peer);
      if (lost) this.onProbeLost(peer);
    }
    if (queued) this.sender.flush();
    return changed;
  }

  /** Visits peer on every tick from now on (a pair toward it was just made), until a scan finds it idle. */
  hurry(peer: Peer): void {
    this.fast.add(peer);
  }

  /**
   * A reply from the peer over family: counted into the path. 'foreign' when it answers another
   * prober's probe (captured and replayed to us); 'recovered' when it ended a blackhole.
   */
  reply(peer: Peer, family: Family, p: Probe, now: number): 'ok' | 'foreign' | 'recovered' | 'no-path' {
    const path = peer.paths[family];
    if (!path) return 'no-path';
    if (p.nonce !== path.nonce) return 'foreign';
    const wasBlackhole = path.blackhole;
    replyReceived(path, p.id, now, this.prm);
    if (wasBlackhole && !path.blackhole) {
      log.info('path recovered', { peer: peer.node, family: familyName(family) });
      return 'recovered';
    }
    return 'ok';
  }

  /** This node's metrics toward a peer (a family counts once it has minSamples outcomes, or is a blackhole). */
  metricsOf(peer: Peer): PairMetrics {
    const out: PairMetrics = {};
    for (const f of FAMILIES) {
      const path = peer.paths[f];
      const m = path && pathMetrics(path);
      if (m && (path.outcomes.length >= this.prm.minSamples || m.blackhole)) out[familyName(f)] = m;
    }
    return out;
  }
}

/** True when a path (or its absence) needs no visit now: no probe in flight and none due. */
function restsUntilLater(path: PathState | undefined, now: number): boolean {
  return !path || (path.inFlight.size === 0 && path.nextSendAt > now);
}

/**
 * Whether this probe tick may expire probes. After the event loop stalled (GC, a starved CPU),
 * the replies that came in meanwhile are still queued on the sockets: the timers run before
 * them. Expiring now would count this daemon's own stall as loss, so expiry waits one tick for
 * them — never two in a row.
 */
export function probeExpiry(
  lastTickAt: number,
  skippedLast: boolean,
  now: number,
  tickMs: number,
  minTimeoutMs: number,
): { expire: boolean; stalled: boolean } {
  const stalled = lastTickAt > 0 && now - lastTickAt > tickMs + minTimeoutMs / 2;
  return { expire: !stalled || skippedLast, stalled };
}

/** The probe tick: half the active probe interval, between 2 and 10 ms. */
export function probeTickMs(activeIntervalMs: number): number {
  return Math.max(2, Math.min(10, Math.floor(activeIntervalMs / 2)));
}
