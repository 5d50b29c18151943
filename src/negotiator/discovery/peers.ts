/** The peer table: nodes heard from, their control addresses, their pods, their probe paths, and when they age out. */

import { addressOf, FAMILIES, type Family, familyName } from '../../net/family';
import { canonical } from '../../net/ip';
import { log } from '../../util/log';
import { newPath, type PathState } from '../probing/probe-path';
import type { Reassembly } from '../protocol/announce';
import type { AnnouncedEndpoint } from '../protocol/messages';

/** A peer node. */
export interface Peer {
  node: string;
  addresses: { ipv4?: string; ipv6?: string };
  port: number;
  lastHeard: { 4?: number; 6?: number };
  lastHeardAny: number;
  /** Its pods (complete announcements only), by CNF id. */
  endpoints: Map<string, AnnouncedEndpoint>;
  /** An announcement in parts, being put together. */
  assembling?: Reassembly;
  /** Probe state per family both nodes have. */
  paths: { 4?: PathState; 6?: PathState };
  lastNegotiateAt: number;
  negotiateDue: boolean;
  /** Pairs dropped since the last negotiation message ("local|remote" as this node names them). */
  dropped: Set<string>;
  /** The capabilities of its last announcement. */
  capabilities: readonly string[];
  /** Its last announcement payload when it was one part and applied in full (a byte-for-byte repeat is only a sign of life). */
  lastAnnounce?: Buffer;
  /** The boot epoch of the peer's last announcement (a new one: the peer restarted). */
  bootEpoch?: bigint;
}

const familyKey = (f: Family) => (f === 4 ? 'ipv4' : 'ipv6');

/** Every peer this node knows, by node name. */
export class PeerTable {
  private readonly peers = new Map<string, Peer>();
  /** "family|address" → peer, for datagrams that name no node (echo replies). */
  private readonly byAddr = new Map<string, Peer>();
  constructor(
    private readonly timeoutMs: number,
    /** Told each time a control address becomes a known peer's (true) or no longer is (false): the echo allow-list follows. */
    private readonly onAddress?: (address: string, known: boolean) => void,
  ) {}

  /** The peer whose control address over family is address (as the socket reports it), if known. */
  byAddress(family: Family, address: string): Peer | undefined {
    return this.byAddr.get(`${family}|${address}`) ?? this.byAddr.get(`${family}|${canonical(address)}`);
  }

  /** The peer named node, if known. */
  get(node: string): Peer | undefined {
    return this.peers.get(node);
  }

  /** True when node is a known peer. */
  has(node: string): boolean {
    return this.peers.has(node);
  }

  /** Every peer. */
  values(): IterableIterator<Peer> {
    return this.peers.values();
  }

  /** Number of peers. */
  get size(): number {
    return this.peers.size;
  }

  /** The peer named node, created (and logged) when new. */
  getOrAdd(node: string, port: number, now: number, via: Family, addresses: unknown): Peer {
    let peer = this.peers.get(node);
    if (!peer) {
      peer = {
        node,
        addresses: {},
        port,
        lastHeard: {},
        lastHeardAny: now,
        endpoints: new Map(),
        paths: {},
        lastNegotiateAt: 0,
        negotiateDue: false,
        dropped: new Set(),
        capabilities: [],
      };
      this.peers.set(node, peer);
      log.info('peer discovered', { peer: node, addresses, via: familyName(via) });
    }
    return peer;
  }

  /** Removes a peer. */
  delete(node: string): void {
    const peer = this.peers.get(node);
    if (peer) this.unindex(peer);
    this.peers.delete(node);
  }

  private unindex(peer: Peer): void {
    for (const f of FAMILIES) {
      const a = addressOf(peer.addresses, f);
      const k = `${f}|${a}`;
      if (this.byAddr.get(k) === peer) {
        this.byAddr.delete(k);
        if (a) this.onAddress?.(a, false);
      }
    }
  }

  /** Records that the peer was heard over family. */
  heard(peer: Peer, family: Family, now: number): void {
    peer.lastHeard[family] = now;
    peer.lastHeardAny = now;
  }

  /** True while the peer was heard within the peer timeout. */
  alive(peer: Peer | undefined, now: number): boolean {
    return peer !== undefined && peerAlive(peer.lastHeardAny, now, this.timeoutMs);
  }

  /** Peers silent for a peer timeout. */
  silent(now: number): Peer[] {
    return [...this.peers.values()].filter((p) => !this.alive(p, now));
  }

  /** Takes the control addresses and port a peer announced; a probe path per family both nodes have. */
  setAddresses(peer: Peer, a: { ipv4?: string; ipv6?: string }, port: number, mine: { ipv4?: string; ipv6?: string }, now: number): void {
    const next = { ...(a.ipv4 ? { ipv4: canonical(a.ipv4) } : {}), ...(a.ipv6 ? { ipv6: canonical(a.ipv6) } : {}) };
    // Only what changed is unindexed (an unchanged address is never briefly unknown: the echo allow-list keeps it).
    const prev = peer.addresses;
    peer.addresses = Object.fromEntries(
      FAMILIES.flatMap((f) =>
        addressOf(prev, f) !== addressOf(next, f) && addressOf(prev, f) ? [[familyKey(f), addressOf(prev, f)]] : [],
      ),
    );
    this.unindex(peer);
    peer.addresses = next;
    peer.port = port;
    for (const f of FAMILIES) {
      const addr = addressOf(peer.addresses, f);
      if (!addr) continue;
      const k = `${f}|${addr}`;
      const had = this.byAddr.get(k);
      this.byAddr.set(k, peer);
      if (!had) this.onAddress?.(addr, true);
    }
    for (const f of FAMILIES) {
      const both = addressOf(peer.addresses, f) && addressOf(mine, f);
      if (both && !peer.paths[f]) peer.paths[f] = newPath(now);
      if (!both) delete peer.paths[f];
    }
  }
}

/** A peer is alive while it was heard within the peer timeout. */
export function peerAlive(lastHeardAny: number | undefined, now: number, timeoutMs: number): boolean {
  return lastHeardAny !== undefined && now - lastHeardAny < timeoutMs;
}
