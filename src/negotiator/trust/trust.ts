/**
 * The daemon's trust part: its auth mode, the frame authenticator, the peer certificates, the
 * judging of pod claims (refusals counted and logged, rate-limited), the revocation list (re-read
 * at every housekeeping tick), certificate expiry and near-expiry warnings, and what status shows.
 */

import { dearmor } from '../../identity/armor';
import type { Certificate } from '../../identity/certificate';
import type { NodeIdentity } from '../../identity/identity-files';
import { REVOCATION_LABEL } from '../../identity/identity-files';
import { type RevocationList, verifyRevocations } from '../../identity/revocation';
import { canonical } from '../../net/ip';
import { log } from '../../util/log';
import { count, type DaemonCounters } from '../counters';
import type { RecordCodec } from '../discovery/book';
import { CertBook } from './cert-book';
import { type AuthMode, FrameAuth } from './frame-auth';
import { judgeClaim } from './pod-claims';
import { recordCodec } from './record-codec';

/** A certificate ending within this is warned about (logs, status, metric). */
export const EXPIRY_WARN_MS = 14 * 86_400_000;
/** Refused claims are logged at most once per node and reason in this period (all are counted). */
const LOG_EVERY_MS = 60_000;

/** What the trust part is built from. */
export interface TrustOptions {
  mode: AuthMode;
  node: string;
  epoch: bigint;
  key?: Buffer;
  identity?: NodeIdentity;
  counters: DaemonCounters;
  /** Wall clock, ms since 1970 (certificate validity). */
  wallNow: () => number;
  /** Monotonic clock (rate limits). */
  now: () => number;
  /** The revocation list now (file, etcd); undefined: none configured or unchanged. */
  readRevocations?: () => RevocationList | undefined;
}

/** Certificate status of one node, as status shows it. */
export interface CertStatus {
  node: string;
  notAfter: string;
  daysLeft: number;
  nearExpiry: boolean;
}

/** The trust part of one daemon. */
export class Trust {
  readonly auth: FrameAuth;
  readonly book?: CertBook;
  private readonly lastLogged = new Map<string, number>();
  private readonly lastWarned = new Map<string, number>();
  private offered: RevocationList | undefined;

  constructor(private readonly o: TrustOptions) {
    if (o.identity) this.book = new CertBook(o.identity.authority, o.identity.cert, o.wallNow);
    this.auth = new FrameAuth({
      mode: o.mode,
      node: o.node,
      epoch: o.epoch,
      key: o.key,
      identity: o.identity,
      book: this.book,
      onCertificate: (c, how) => {
        if (how === 'rotated') {
          count(o.counters.events, 'certificate-rotated');
          log.info('peer certificate replaced (new key, same name)', { peer: c.node, fingerprint: c.fingerprint.slice(0, 16) });
        }
      },
    });
  }

  /** How this node writes and judges etcd records. */
  recordCodec(): RecordCodec {
    return recordCodec(this.o.mode, this.o.key, this.o.identity, this.book);
  }

  /** A revocation list from etcd (armored text, as the file): checked against the authority, taken at the next tick; false when refused. */
  offerRevocations(value: Buffer): boolean {
    if (!this.o.identity) return false;
    try {
      const list = verifyRevocations(dearmor(value.toString('utf8'), REVOCATION_LABEL, 'etcd revocation list'), this.o.identity.authority);
      if (typeof list === 'string') throw new Error(`refused: ${list}`);
      this.offered = list;
      return true;
    } catch (err) {
      log.error('revocation list from etcd refused', { error: (err as Error).message });
      return false;
    }
  }

  /** The auth mode. */
  get mode(): AuthMode {
    return this.o.mode;
  }

  /** Whether node may register a pod with these addresses; a refusal is counted (a drop reason) and logged, rate-limited. */
  mayRegister(node: string, pod: { cnf: string; ipv4: string; ipv6: string }): boolean {
    const why = judgeClaim(this.book, node, pod);
    if (!why) return true;
    count(this.o.counters.drops, `claim-${why}`);
    const k = `${node}|${why}`;
    const now = this.o.now();
    if ((this.lastLogged.get(k) ?? -Infinity) + LOG_EVERY_MS <= now) {
      this.lastLogged.set(k, now);
      if (this.lastLogged.size > 4096) this.lastLogged.delete(this.lastLogged.keys().next().value!);
      const owner = this.book?.ownerOf(pod.ipv4, node) ?? this.book?.ownerOf(pod.ipv6, node);
      log.warn('pod claim refused', {
        peer: node,
        cnf: pod.cnf,
        ipv4: pod.ipv4,
        ipv6: pod.ipv6,
        why: why === 'outside-cidrs' ? "outside the peer's certified pod CIDRs" : `owned by certified node ${owner}`,
      });
    }
    return false;
  }

  /** True when every announced control address is one the certificate names (always true without one). */
  addressesCertified(cert: Certificate | undefined, addresses: { ipv4?: string; ipv6?: string }): boolean {
    if (!cert) return true;
    return [addresses.ipv4, addresses.ipv6].every((a) => a === undefined || cert.addresses.includes(canonical(a)));
  }

  /**
   * Housekeeping: takes a new revocation list, forgets expired certificates, warns about ones
   * near expiry. Returns the nodes to drop at once (revoked or expired), with why.
   */
  tick(): { node: string; why: string }[] {
    if (!this.book) return [];
    const out: { node: string; why: string }[] = [];
    let list: RevocationList | undefined;
    try {
      list = this.o.readRevocations?.();
    } catch (err) {
      log.error('revocation list not read; the previous one stays in force', { error: (err as Error).message });
    }
    for (const l of [list, this.offered])
      if (l) for (const node of this.book.setRevocations(l)) out.push({ node, why: 'certificate revoked' });
    this.offered = undefined;
    for (const node of this.book.expire()) out.push({ node, why: 'certificate expired' });
    for (const { node } of out) {
      this.auth.forget(node);
      count(this.o.counters.events, 'peer-untrusted');
    }
    const now = this.o.now();
    for (const c of this.book.nearExpiry(EXPIRY_WARN_MS)) {
      if ((this.lastWarned.get(c.fingerprint) ?? -Infinity) + 3_600_000 > now) continue;
      this.lastWarned.set(c.fingerprint, now);
      log.warn('certificate near expiry', {
        certNode: c.node,
        own: c === this.book.own,
        notAfter: new Date(c.notAfter).toISOString(),
        daysLeft: Math.floor((c.notAfter - this.o.wallNow()) / 86_400_000),
      });
    }
    return out;
  }

  /** A peer is gone (aged out, dropped): its certificate and keys are forgotten. */
  forget(node: string): void {
    this.book?.forget(node);
    this.auth.forget(node);
  }

  /** Certificates ending within EXPIRY_WARN_MS (own and peers'). */
  nearExpiry(): Certificate[] {
    return this.book?.nearExpiry(EXPIRY_WARN_MS) ?? [];
  }

  /** What status shows. */
  status(): { mode: AuthMode; own?: CertStatus; certifiedPeers: number; revoked: number; nearExpiry: CertStatus[] } {
    const show = (c: Certificate): CertStatus => ({
      node: c.node,
      notAfter: new Date(c.notAfter).toISOString(),
      daysLeft: Math.floor((c.notAfter - this.o.wallNow()) / 86_400_000),
      nearExpiry: c.notAfter - this.o.wallNow() <= EXPIRY_WARN_MS,
    });
    if (!this.book) return { mode: this.o.mode, certifiedPeers: 0, revoked: 0, nearExpiry: [] };
    return {
      mode: this.o.mode,
      own: show(this.book.own),
      certifiedPeers: [...this.book.values()].length,
      revoked: this.book.revocationList.revoked.size,
      nearExpiry: this.nearExpiry().map(show),
    };
  }
}
