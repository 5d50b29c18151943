/**
 * Demand-style probing (BFD's demand mode, RFC 5880 §6.6): a path toward a peer with pairs
 * (this node → the peer, over one family) whose pairs' own packets come back over that family is
 * proven by them, and is probed at demandIntervalMs instead of activeIntervalMs. The data plane
 * says when each pair's last packet left and arrived over each wire family (afsteer_pair_seen).
 * Fast probing starts again at once — with a burst at tick spacing, so that a blackhole is still
 * called within the failover budget — when the pairs send over the path and nothing has come back
 * for unansweredMs (half a probe timeout, at least minUnansweredMs), when a probe is lost, while the
 * path is a blackhole, and until the window holds minSamples outcomes; it holds for holdMs after
 * the last such sign. A path with no data-plane evidence (no map, a protected pair) is probed fast
 * as before. Pure, clock injected (ms).
 */

/** What the data plane saw of a peer's pairs over one wire family: the last packet sent and received (daemon clock, ms; undefined: none). */
export interface PathTraffic {
  sentAt?: number;
  receivedAt?: number;
}

/** The demand state of one path. */
export interface DemandState {
  /** The first packet sent since the last one received, as far as the observations tell (undefined: nothing unanswered). */
  unansweredSince?: number;
  /** When the traffic was last observed. */
  observedAt?: number;
  /** Fast probing holds until then. */
  fastUntil: number;
  /** Probes still to go at burst spacing after a trigger. */
  burst: number;
  /** Times fast probing was started by the traffic (unanswered sends) and by lost probes. */
  triggers: { unanswered: number; lost: number };
  /** The last decision's mode. */
  mode: 'fast' | 'demand';
}

/** Demand probing parameters. */
export interface DemandParams {
  /** Interval of a proven path (0: demand probing off). */
  demandIntervalMs: number;
  /** Interval of fast probing. */
  activeIntervalMs: number;
  /** Spacing of the burst after a trigger (the probe tick). */
  burstIntervalMs: number;
  /** Probes in the burst (the blackhole threshold: a blackhole is called as soon as they are lost). */
  burstProbes: number;
  /** Floor of how long sent traffic may go unanswered before fast probing starts. */
  minUnansweredMs: number;
  /** How long fast probing holds after the last sign of trouble. */
  holdMs: number;
}

/** Defaults: proven paths probed 4 times a second; fast probing within max(20 ms, half a probe timeout) of an unanswered send. */
export const DEFAULT_DEMAND = { demandIntervalMs: 250, minUnansweredMs: 20, holdMs: 500 } as const;

/** A new demand state (fast until the path has shown itself). */
export function newDemandState(): DemandState {
  return { fastUntil: 0, burst: 0, triggers: { unanswered: 0, lost: 0 }, mode: 'fast' };
}

/**
 * Takes in what the data plane saw at time now. Everything sent is answered when the last arrival
 * is no older than the last send. Otherwise the first unanswered send is at or after the last
 * arrival — and after the previous observation when nothing was unanswered then — so it is
 * placed at the latest of those two (the earliest it can be: fast probing starts no later than
 * it should; a packet is never taken for lost before it was sent, since sends are not older than
 * the observation before them).
 */
export function observeTraffic(s: DemandState, t: PathTraffic, now: number): void {
  const { sentAt, receivedAt } = t;
  if (sentAt === undefined || (receivedAt !== undefined && receivedAt >= sentAt)) s.unansweredSince = undefined;
  else if (s.unansweredSince === undefined) s.unansweredSince = Math.max(receivedAt ?? -Infinity, s.observedAt ?? sentAt);
  else if (receivedAt !== undefined && receivedAt >= s.unansweredSince) s.unansweredSince = receivedAt;
  s.observedAt = now;
}

/** How long the path's traffic has gone unanswered at time now (0: nothing unanswered). */
export function unansweredFor(s: DemandState, now: number): number {
  return s.unansweredSince === undefined ? 0 : Math.max(0, now - s.unansweredSince);
}

/** How long traffic may go unanswered before fast probing starts: half the path's probe timeout, at least minUnansweredMs. */
export function unansweredLimit(probeTimeoutMs: number, prm: DemandParams): number {
  return Math.max(prm.minUnansweredMs, probeTimeoutMs / 2);
}

/** What the path shows this tick. */
export interface PathSigns {
  /** The data plane's evidence (undefined: none — the path is probed fast as without demand probing). */
  traffic?: PathTraffic;
  blackhole: boolean;
  /** Outcomes in the window, and how many the first evaluation needs. */
  samples: number;
  minSamples: number;
  /** A probe of the path was counted lost this tick. */
  lost: boolean;
  /** The path's current probe timeout. */
  timeoutMs: number;
}

/** The decision for one path this tick: the interval after the next probe, and whether a probe goes at once. */
export interface DemandDecision {
  mode: 'fast' | 'demand';
  intervalMs: number;
  probeNow: boolean;
}

/** Decides how a path toward a peer with pairs is probed from now (updates s, including its mode). The decision is shared: read, never kept or changed. */
export function demandStep(s: DemandState, signs: PathSigns, now: number, prm: DemandParams): DemandDecision {
  const d = decide(s, signs, now, prm, decisionsFor(prm));
  s.mode = d.mode;
  return d;
}

/** The four decisions there are for one set of parameters (made once: the prober asks for one per path and tick). */
interface Decisions {
  fast: DemandDecision;
  demand: DemandDecision;
  burst: DemandDecision;
  burstNow: DemandDecision;
}
const decisionCache = new WeakMap<DemandParams, Decisions>();
function decisionsFor(prm: DemandParams): Decisions {
  let d = decisionCache.get(prm);
  if (!d)
    decisionCache.set(
      prm,
      (d = Object.freeze({
        fast: Object.freeze({ mode: 'fast', intervalMs: prm.activeIntervalMs, probeNow: false }),
        demand: Object.freeze({ mode: 'demand', intervalMs: prm.demandIntervalMs, probeNow: false }),
        burst: Object.freeze({ mode: 'fast', intervalMs: prm.burstIntervalMs, probeNow: false }),
        burstNow: Object.freeze({ mode: 'fast', intervalMs: prm.burstIntervalMs, probeNow: true }),
      }) as Decisions),
    );
  return d;
}

function decide(s: DemandState, signs: PathSigns, now: number, prm: DemandParams, d: Decisions): DemandDecision {
  const fast = d.fast;
  if (prm.demandIntervalMs <= 0 || !signs.traffic) return fast;
  observeTraffic(s, signs.traffic, now);
  if (signs.blackhole || signs.samples < signs.minSamples) {
    s.fastUntil = Math.max(s.fastUntil, now + prm.holdMs);
    return fast;
  }
  const unanswered = unansweredFor(s, now) > unansweredLimit(signs.timeoutMs, prm);
  if (unanswered || signs.lost) {
    const fresh = now >= s.fastUntil;
    s.fastUntil = now + prm.holdMs;
    if (fresh) {
      // Fast probing starts now: a burst at tick spacing, so the losses that call a blackhole come at once.
      s.burst = prm.burstProbes;
      if (unanswered) s.triggers.unanswered++;
      else s.triggers.lost++;
      return d.burstNow;
    }
  }
  if (now < s.fastUntil) return s.burst > 0 ? d.burst : fast;
  return d.demand;
}

/** A probe of the path went out (one less of the burst to go). */
export function demandProbeSent(s: DemandState): void {
  if (s.burst > 0) s.burst--;
}
