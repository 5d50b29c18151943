/**
 * Remote pods in the maps: which peer owns each registered address, and the pods of silent peers
 * (or of a previous run) kept registered — so this node still decapsulates their packets, should
 * that node's pinned steering still encapsulate — until remoteRetentionMs.
 */
import type { SteeringWriter } from '../../bpf/steering-writer';
import { log } from '../../util/log';
import type { AnnouncedEndpoint } from '../protocol/messages';

/** The peer and CNF id owning a registered remote address. */
export interface RemoteOwner {
  node: string;
  cnf: string;
}

/** The remote pods this daemon registered, and the retained ones. */
export class RemoteRegistry {
  private readonly owner = new Map<string, RemoteOwner>();
  /** Retained pods by IPv6 address. */
  private readonly retained = new Map<string, { ipv4: string; ipv6: string; until: number }>();

  /** claimedElsewhere: another network's negotiator on this node holds the address (retention never unregisters it). */
  constructor(
    private readonly writer: SteeringWriter,
    private readonly retentionMs: number,
    private readonly claimedElsewhere: (address: string) => boolean = () => false,
  ) {}

  /** Keeps every remote the maps hold (a previous run's) until claimed or retention ends. */
  retainAll(now: number): void {
    for (const r of this.writer.listRemotes()) this.retained.set(r.ipv6, { ...r, until: now + this.retentionMs });
  }

  /** Registers a peer's pod; false (logged) when the maps refuse it. */
  register(node: string, e: AnnouncedEndpoint): boolean {
    try {
      this.writer.registerRemote({ ipv4: e.ipv4, ipv6: e.ipv6 });
    } catch (err) {
      log.warn('cannot register remote pod', { peer: node, cnf: e.cnf, error: (err as Error).message });
      return false;
    }
    this.owner.set(e.ipv4, { node, cnf: e.cnf });
    this.owner.set(e.ipv6, { node, cnf: e.cnf });
    return true;
  }

  /** The owner of a registered remote address. */
  ownerOf(address: string): RemoteOwner | undefined {
    return this.owner.get(address);
  }

  /** A peer's pod is gone: unregistered now, or retained (when asked and retention is on). */
  forget(e: AnnouncedEndpoint, retain: boolean, now: number): void {
    this.owner.delete(e.ipv4);
    this.owner.delete(e.ipv6);
    if (retain && this.retentionMs > 0) {
      this.retained.set(e.ipv6, { ipv4: e.ipv4, ipv6: e.ipv6, until: now + this.retentionMs });
      return;
    }
    try {
      this.writer.unregisterRemote(e.ipv6);
    } catch (err) {
      log.error('cannot unregister remote pod', { cnf: e.cnf, error: (err as Error).message });
    }
  }

  /** Retained pods claimed again are released from retention; expired ones are unregistered. */
  expire(now: number): void {
    for (const [ipv6, r] of this.retained) {
      if (this.owner.has(ipv6) || this.claimedElsewhere(ipv6)) {
        this.retained.delete(ipv6);
      } else if (now >= r.until) {
        this.retained.delete(ipv6);
        try {
          this.writer.unregisterRemote(r.ipv6);
          log.info('remote pod unregistered', { ipv4: r.ipv4, ipv6: r.ipv6, why: 'its node stayed silent' });
        } catch (err) {
          log.error('cannot unregister remote pod', { ipv6: r.ipv6, error: (err as Error).message });
        }
      }
    }
  }
}
