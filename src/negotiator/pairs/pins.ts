/**
 * Operator pins (`afsteerd prefer <peer-node | cnf-id> <ipv4 | ipv6 | auto>`): a family for every
 * pair with a peer node, or for every pair of a CNF. The pure rule (`applyPin`, `stepPinned`) and
 * the store, persisted in the stateDir so a pin outlives a restart.
 *
 * Both ends agree because only the pair's leader decides: it follows its own pin, else the pin
 * the follower sent in its negotiation message (`pinned`, authenticated like the rest of it). The
 * field goes only to peers announcing `prefer-v1`; toward an older peer a follower's pin cannot be
 * honoured and status says so. A pinned family that is blackholed is still left for the other one
 * (never break connectivity) and taken again when it is back.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { writeFileAtomic } from '../../util/atomic-file';
import type { Peer } from '../discovery/peers';
import { NODE_NAME } from '../protocol/frame';
import { CnfIdSchema, type FamilyName, FamilySchema } from '../protocol/messages';
import { combinedMetrics, type PairState, type PinInfo, stepSelection } from './pair';
import type { PairMetrics, PolicyParams } from './selection';

/** The capability a peer announces when it understands a pair's `pinned`. */
export const PREFER_CAPABILITY = 'prefer-v1';
/** The pins file in the stateDir. */
export const PINS_FILE = 'afsteerd-pins.json';

const PinsFileSchema = z.strictObject({
  version: z.literal(1),
  nodes: z.record(z.string().check(z.regex(NODE_NAME)), FamilySchema),
  cnfs: z.record(CnfIdSchema, FamilySchema),
});
type PinsFile = z.infer<typeof PinsFileSchema>;

/** A pin that applies to one pair, before it is applied. */
export interface Pin {
  family: FamilyName;
  source: PinInfo['source'];
}

const other = (f: FamilyName): FamilyName => (f === 'IPv4' ? 'IPv6' : 'IPv4');

/**
 * The family a pinned pair uses: the pin's, unless the metrics say it is blackholed while the
 * other family is alive (then the other, until the pinned one is back).
 */
export function pinnedFamily(pin: FamilyName, metrics: PairMetrics): { family: FamilyName; honoured: boolean } {
  const o = other(pin);
  if (metrics[pin]?.blackhole && metrics[o] && !metrics[o]!.blackhole) return { family: o, honoured: false };
  return { family: pin, honoured: true };
}

/** A leader's pair under a pin (metrics: both ends' combined): its selection set to the pinned family, a change counted as a new round. */
export function applyPin(p: PairState, pin: Pin, metrics: PairMetrics, now: number): PairState {
  const { family, honoured } = pinnedFamily(pin.family, metrics);
  const info: PinInfo = {
    family: pin.family,
    source: pin.source,
    honoured,
    ...(honoured ? {} : { note: `${pin.family} blackholed: on ${family} until it is back` }),
  };
  if (p.selection.current === family) return { ...p, pin: info };
  const reason = honoured
    ? `pinned ${family} by operator (${pin.source})`
    : `blackhole on pinned ${pin.family}: ${family} until it is back`;
  return {
    ...p,
    pin: info,
    round: p.round + 1,
    selection: { current: family, streak: 0, lastChange: { at: now, from: p.selection.current, to: family, reason } },
  };
}

/** One evaluation step of a pair: the pin when there is one (leader applies it, follower records it), the policy otherwise. */
export function stepPinned(
  p: PairState,
  pin: Pin | undefined,
  mine: PairMetrics,
  now: number,
  freshMs: number,
  prm: PolicyParams,
): PairState {
  if (!pin) {
    const next = stepSelection(p, mine, now, freshMs, prm);
    if (!next.pin) return next;
    const { pin: _gone, ...rest } = next;
    return rest;
  }
  if (p.leader) {
    const peerMetrics = p.peer && now - p.peer.at <= freshMs ? p.peer.metrics : undefined;
    return applyPin(p, pin, combinedMetrics(mine, peerMetrics), now);
  }
  // The follower: the leader decides. It honours the pin when it knows of it (prefer-v1).
  const agreed = p.peer?.preferred ?? null;
  return {
    ...p,
    pin: {
      family: pin.family,
      source: pin.source,
      honoured: agreed === pin.family,
      ...(agreed === pin.family ? {} : { note: 'waiting for the leader' }),
    },
  };
}

/** This node's pins, persisted in stateDir. */
export class PinStore {
  private data: PinsFile = { version: 1, nodes: {}, cnfs: {} };
  private readonly path: string;

  /** Loads the pins file (none: no pins). A damaged file is reported through onError and ignored. */
  constructor(stateDir: string | undefined, onError: (err: Error) => void = () => {}) {
    this.path = stateDir ? join(stateDir, PINS_FILE) : '';
    if (!this.path || !existsSync(this.path)) return;
    try {
      this.data = PinsFileSchema.parse(JSON.parse(readFileSync(this.path, 'utf8')));
    } catch (err) {
      onError(new Error(`ignoring ${this.path}: ${(err as Error).message}`, { cause: err }));
    }
  }

  /** Sets (or with 'auto' clears) the pin of a peer node or a CNF; persisted before it returns. */
  set(kind: 'node' | 'cnf', target: string, family: FamilyName | 'auto'): void {
    const table = kind === 'node' ? this.data.nodes : this.data.cnfs;
    const next = { ...table };
    if (family === 'auto') delete next[target];
    else next[target] = family;
    const data = { ...this.data, [kind === 'node' ? 'nodes' : 'cnfs']: next };
    if (this.path) writeFileAtomic(this.path, JSON.stringify(data, null, 2) + '\n', 0o600);
    this.data = data;
  }

  /** Every pin, for status. */
  list(): { nodes: Record<string, FamilyName>; cnfs: Record<string, FamilyName> } {
    return { nodes: { ...this.data.nodes }, cnfs: { ...this.data.cnfs } };
  }

  /** This node's own pin for a pair: a CNF pin (local pod first, then the remote one), else the peer node's. */
  ownPin(p: Pick<PairState, 'localCnf' | 'remoteCnf' | 'peerNode'>): Pin | undefined {
    const c = this.data.cnfs[p.localCnf] ?? this.data.cnfs[p.remoteCnf];
    if (c) return { family: c, source: 'cnf' };
    const n = this.data.nodes[p.peerNode];
    return n ? { family: n, source: 'node' } : undefined;
  }

  /** The pin in force for a pair: this node's, else the peer's (while its message is fresh). */
  forPair(p: PairState, _peer: Peer | undefined, now: number, freshMs: number): Pin | undefined {
    const own = this.ownPin(p);
    if (own) return own;
    if (p.peer?.pinned && now - p.peer.at <= freshMs) return { family: p.peer.pinned, source: 'peer' };
    return undefined;
  }
}

/** What `prefer` names: a known peer node, else a CNF (a local pod, a peer's pod, or one already pinned). */
export function preferTarget(
  target: string,
  peers: { has(node: string): boolean; values(): Iterable<Peer> },
  local: { get(cnf: string): unknown },
  pins: PinStore,
): 'node' | 'cnf' | undefined {
  if (peers.has(target) || pins.list().nodes[target]) return 'node';
  if (local.get(target) || pins.list().cnfs[target]) return 'cnf';
  for (const p of peers.values()) if (p.endpoints.has(target)) return 'cnf';
  return undefined;
}
