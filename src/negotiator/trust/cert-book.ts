/**
 * The certificates this node holds: its own and each peer's, checked against the authority, the
 * clock and the revocation list. A certificate carried by a frame is checked (once per distinct
 * certificate: verified ones are remembered by fingerprint) but only installed for its node once
 * the frame it came in authenticates under it; a node's newer certificate (a new key under the
 * same name) replaces its older one, an older one never replaces a newer. Pure apart from the
 * signature checks (the wall clock is injected).
 */
import type { KeyObject } from 'node:crypto';
import { type Certificate, type CertRejectReason, cidrContains, decodeCertificate, verifyCertificate } from '../../identity/certificate';
import { emptyRevocations, isRevoked, type RevocationList } from '../../identity/revocation';
import { canonical, familyOf } from '../../net/ip';

/** Why a carried certificate was refused. */
export type CertRefusal = CertRejectReason | 'name' | 'superseded' | 'rate';

/** Distinct certificates remembered as verified (or refused), at most. */
const MAX_VERIFIED = 8192;
/** Fresh certificate verifications per second, at most (a flood of made-up certificates costs this much CPU, no more). */
export const MAX_CERT_CHECKS_PER_S = 500;

/** Known certificates by node name, with the verification cache and the revocation list. */
export class CertBook {
  private readonly byNode = new Map<string, Certificate>();
  private readonly verified = new Map<string, Certificate | CertRejectReason>();
  private revocations: RevocationList = emptyRevocations();
  private budget = { second: -1, used: 0 };

  constructor(
    private readonly authority: KeyObject,
    /** This node's own certificate (never a peer's; its CIDRs count for ownership). */
    readonly own: Certificate,
    private readonly wallNow: () => number,
  ) {}

  /** The installed certificate of a peer node. */
  get(node: string): Certificate | undefined {
    return this.byNode.get(node);
  }

  /** Every installed peer certificate. */
  values(): IterableIterator<Certificate> {
    return this.byNode.values();
  }

  /** The certificate to authenticate a frame from node that carries bytes: the installed one when it is the same, else a checked new one. */
  check(node: string, bytes: Buffer): Certificate | CertRefusal {
    const cur = this.byNode.get(node);
    if (cur?.bytes.equals(bytes)) return cur;
    const c = this.verify(bytes);
    if (typeof c === 'string') return c;
    if (c.node !== node) return 'name';
    if (isRevoked(this.revocations, c)) return 'revoked';
    if (cur && c.issuedAt < cur.issuedAt) return 'superseded';
    return c;
  }

  /** Verifies a certificate (cached by content; fresh checks limited per second); the clock is checked on every call. */
  private verify(bytes: Buffer): Certificate | CertRefusal {
    const d = decodeCertificate(bytes);
    if (typeof d === 'string') return d;
    let r = this.verified.get(d.fingerprint);
    if (r === undefined) {
      const second = Math.floor(this.wallNow() / 1000);
      if (second !== this.budget.second) this.budget = { second, used: 0 };
      if (++this.budget.used > MAX_CERT_CHECKS_PER_S) return 'rate';
      const why = verifyCertificate(d, this.authority, this.wallNow());
      // Only signature and authority verdicts are kept: validity is judged again below, by the clock.
      r = why === 'authority' || why === 'signature' ? why : d;
      if (this.verified.size >= MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(d.fingerprint, r);
    }
    if (typeof r === 'string') return r;
    const now = this.wallNow();
    if (now >= r.notAfter) return 'expired';
    return verifyCertificate(r, this.authority, now) === 'not-yet-valid' ? 'not-yet-valid' : r;
  }

  /** Installs a checked certificate whose frame authenticated; says whether it was new, a rotation, or the one held. */
  install(c: Certificate): 'new' | 'rotated' | 'same' {
    const cur = this.byNode.get(c.node);
    if (cur?.fingerprint === c.fingerprint) return 'same';
    this.byNode.set(c.node, c);
    return cur ? 'rotated' : 'new';
  }

  /** Forgets a node's certificate (its peer aged out, was revoked, or expired). */
  forget(node: string): void {
    this.byNode.delete(node);
  }

  /** Takes a newer revocation list; returns the nodes whose installed certificates it revokes (forgotten). */
  setRevocations(list: RevocationList): string[] {
    if (list.issuedAt < this.revocations.issuedAt) return [];
    this.revocations = list;
    const gone: string[] = [];
    for (const [node, c] of this.byNode) {
      if (isRevoked(list, c)) {
        this.byNode.delete(node);
        gone.push(node);
      }
    }
    return gone;
  }

  /** The revocation list in force. */
  get revocationList(): RevocationList {
    return this.revocations;
  }

  /** Forgets installed certificates past their validity; returns their nodes. */
  expire(): string[] {
    const now = this.wallNow();
    const gone: string[] = [];
    for (const [node, c] of this.byNode) {
      if (now >= c.notAfter) {
        this.byNode.delete(node);
        gone.push(node);
      }
    }
    return gone;
  }

  /** The certified node (this one included) other than except whose pod CIDRs hold address, if any. */
  ownerOf(address: string, except: string): string | undefined {
    const a = canonical(address);
    const family = familyOf(a);
    const holds = (c: Certificate) => c.podCidrs.some((cidr) => cidr.family === family && cidrContains(cidr, a));
    if (this.own.node !== except && holds(this.own)) return this.own.node;
    for (const [node, c] of this.byNode) if (node !== except && holds(c)) return node;
    return undefined;
  }

  /** Certificates (own and peers') that end within withinMs. */
  nearExpiry(withinMs: number): Certificate[] {
    const limit = this.wallNow() + withinMs;
    return [this.own, ...this.byNode.values()].filter((c) => c.notAfter <= limit);
  }
}
