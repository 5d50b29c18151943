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
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/atomic-file';
import { readOwnFileCapped, UnsafePathError } from '../../util/safe-fs';
import type { Peer } from '../discovery/peers';
import { NODE_NAME } from '../protocol/frame';
import { CnfIdSchema, type FamilyName, FamilySchema } from '../protocol/messages';
import { combinedMetrics, type PairState, type PinInfo, stepSelection } from './pair';
import type { PairMetrics, PolicyParams } from './selection';

/** The capability a peer announces when it understands a pair's `pinned`. */
export const PREFER_CAPABILITY = 'prefer-v1';
/** The pins file in the stateDir. */
export const PINS_FILE = 'afsteerd-pins.json';

/** Largest pins file read (a pin is ~100 bytes). */
const MAX_PINS_BYTES = 1 << 20;
/** Bad entries of a pins file logged one by one; the rest are counted in one more line. */
const MAX_LOGGED_DROPS = 20;

type PinTable = Map<string, FamilyName>;
const KEY_OK = { node: (k: string) => NODE_NAME.test(k), cnf: (k: string) => CnfIdSchema.safeParse(k).success };

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

/**
 * This node's pins, persisted in stateDir. Keyed by Maps, never by plain objects: a target is any
 * string an operator or a peer gives (`constructor` is a valid node name), never a property.
 */
export class PinStore {
  private nodes: PinTable = new Map();
  private cnfs: PinTable = new Map();
  private readonly path: string;

  /**
   * Loads the pins file (none: no pins), read as one of afsteer's files (safe-fs: no link, FIFO or
   * other user's file, at most 1 MiB). A refused or unreadable file, and each bad entry (dropped,
   * the good ones kept), is reported through onError in one line that never quotes the file.
   */
  constructor(stateDir: string | undefined, onError: (err: Error) => void = () => {}) {
    this.path = stateDir ? join(stateDir, PINS_FILE) : '';
    if (!this.path) return;
    let text: string;
    try {
      text = readOwnFileCapped(this.path, MAX_PINS_BYTES).toString('utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      const why =
        err instanceof UnsafePathError ? err.message : `${this.path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
      onError(new Error(`ignoring ${why}`, { cause: err }));
      return;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      // Not the parser's message: it quotes the file.
      onError(new Error(`ignoring ${this.path}: not valid JSON`));
      return;
    }
    const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (!isTable(raw) || raw.version !== 1 || !isTable(raw.nodes) || !isTable(raw.cnfs)) {
      onError(new Error(`ignoring ${this.path}: not a pins file of version 1 ({"version":1,"nodes":{...},"cnfs":{...}})`));
      return;
    }
    let dropped = 0;
    const load = (kind: 'node' | 'cnf', from: Record<string, unknown>): PinTable => {
      const out: PinTable = new Map();
      for (const [k, v] of Object.entries(from)) {
        const family = FamilySchema.safeParse(v);
        if (KEY_OK[kind](k) && family.success) {
          out.set(k, family.data);
          continue;
        }
        if (dropped++ < MAX_LOGGED_DROPS) {
          const why = KEY_OK[kind](k) ? 'family must be "IPv4" or "IPv6"' : `not a ${kind === 'node' ? 'node name' : 'CNF id'}`;
          onError(new Error(`dropping the ${kind} pin ${JSON.stringify(k.slice(0, 253))} of ${this.path}: ${why}`));
        }
      }
      return out;
    };
    this.nodes = load('node', raw.nodes);
    this.cnfs = load('cnf', raw.cnfs);
    if (dropped > MAX_LOGGED_DROPS) onError(new Error(`dropped ${dropped - MAX_LOGGED_DROPS} more bad pins of ${this.path}`));
  }

  /** Sets (or with 'auto' clears) the pin of a peer node or a CNF; persisted before it returns. */
  set(kind: 'node' | 'cnf', target: string, family: FamilyName | 'auto'): void {
    const next = new Map(kind === 'node' ? this.nodes : this.cnfs);
    if (family === 'auto') next.delete(target);
    else next.set(target, family);
    const nodes = kind === 'node' ? next : this.nodes;
    const cnfs = kind === 'cnf' ? next : this.cnfs;
    if (this.path)
      writeFileAtomic(
        this.path,
        JSON.stringify({ version: 1, nodes: Object.fromEntries(nodes), cnfs: Object.fromEntries(cnfs) }, null, 2) + '\n',
        0o600,
      );
    this.nodes = nodes;
    this.cnfs = cnfs;
  }

  /** Whether a peer node or a CNF has a pin. */
  has(kind: 'node' | 'cnf', target: string): boolean {
    return (kind === 'node' ? this.nodes : this.cnfs).has(target);
  }

  /** Every pin, for status. */
  list(): { nodes: Record<string, FamilyName>; cnfs: Record<string, FamilyName> } {
    return { nodes: Object.fromEntries(this.nodes), cnfs: Object.fromEntries(this.cnfs) };
  }

  /** This node's own pin for a pair: a CNF pin (local pod first, then the remote one), else the peer node's. */
  ownPin(p: Pick<PairState, 'localCnf' | 'remoteCnf' | 'peerNode'>): Pin | undefined {
    const c = this.cnfs.get(p.localCnf) ?? this.cnfs.get(p.remoteCnf);
    if (c) return { family: c, source: 'cnf' };
    const n = this.nodes.get(p.peerNode);
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
  if (peers.has(target) || pins.has('node', target)) return 'node';
  if (local.get(target) || pins.has('cnf', target)) return 'cnf';
  for (const p of peers.values()) if (p.endpoints.has(target)) return 'cnf';
  return undefined;
}
