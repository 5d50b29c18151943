/**
 * The identity layer: certificates (round trip, every refusal: another authority, a flipped bit,
 * expiry, not yet valid, truncation, oversize, trailing bytes, host bits), CIDR containment,
 * revocation lists, pairwise keys (both ends agree, directions and epochs differ), and the
 * `afsteer identity` commands end to end on files (modes, show, refusal to replace an authority).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runIdentity } from '../../../src/cli/identity';
import {
  certCidr,
  certifiedCidrOf,
  checkCertificate,
  cidrContains,
  decodeCertificate,
  MAX_CERT_LEN,
} from '../../../src/identity/certificate';
import { loadNodeIdentity, loadRevocationFile, readCertFile } from '../../../src/identity/identity-files';
import { rawPublicKey } from '../../../src/identity/keys';
import { pairwiseKey, sharedSecret } from '../../../src/identity/pairwise';
import { isRevoked, signRevocations, verifyRevocations } from '../../../src/identity/revocation';
import { testAuthority, testIdentity } from '../../support/identities';

const NOW = 1_750_000_000_000;
const auth = testAuthority();
const opts = { node: 'node-b', podCidrs: ['10.2.0.0/24', 'fd00:2::/64'], addresses: ['192.168.2.2', 'fd02::2'] };

describe('node certificate', () => {
  const id = testIdentity(auth, opts, NOW);
  it('round-trips and verifies under its authority', () => {
    const c = checkCertificate(id.cert.bytes, auth.pub, NOW);
    expect(typeof c).toBe('object');
    if (typeof c === 'string') return;
    expect(c.node).toBe('node-b');
    expect(c.podCidrs).toEqual([
      { family: 4, address: '10.2.0.0', prefix: 24 },
      { family: 6, address: 'fd00:2::', prefix: 64 },
    ]);
    expect(c.addresses).toEqual(['192.168.2.2', 'fd02::2']);
    expect(c.bytes.length).toBeLessThanOrEqual(MAX_CERT_LEN);
  });
  it('refuses another authority, any flipped bit, expiry and a future start', () => {
    expect(checkCertificate(id.cert.bytes, testAuthority().pub, NOW)).toBe('authority');
    for (let i = 0; i < id.cert.bytes.length; i++) {
      const b = Buffer.from(id.cert.bytes);
      b[i]! ^= 0x01;
      expect(checkCertificate(b, auth.pub, NOW), `bit flipped in byte ${i}`).toBeTypeOf('string');
    }
    expect(checkCertificate(id.cert.bytes, auth.pub, id.cert.notAfter)).toBe('expired');
    expect(checkCertificate(id.cert.bytes, auth.pub, id.cert.issuedAt - 3_600_000)).toBe('not-yet-valid');
  });
  it('refuses every truncation, trailing bytes and an oversized blob without reading past its end', () => {
    for (let n = 0; n < id.cert.bytes.length; n++) expect(decodeCertificate(id.cert.bytes.subarray(0, n))).toBeTypeOf('string');
    expect(decodeCertificate(Buffer.concat([id.cert.bytes, Buffer.alloc(1)]))).toBeTypeOf('string');
    expect(decodeCertificate(Buffer.alloc(MAX_CERT_LEN + 1, 0x41))).toBe('oversized');
  });
  it('pod CIDRs: host bits refused, containment exact by family and prefix', () => {
    expect(() => certCidr('10.2.0.1/24')).toThrow(/host bits/);
    expect(cidrContains(certCidr('10.2.0.0/24'), '10.2.0.77')).toBe(true);
    expect(cidrContains(certCidr('10.2.0.0/24'), '10.2.1.1')).toBe(false);
    expect(cidrContains(certCidr('10.2.0.0/24'), '::ffff:10.2.0.1')).toBe(false);
    expect(cidrContains(certCidr('fd00:2::/64'), 'fd00:2:0:0:1::5')).toBe(true);
    expect(cidrContains(certCidr('fd00:2::/64'), 'fd00:3::5')).toBe(false);
    expect(certifiedCidrOf(id.cert, 'fd00:2::9')?.prefix).toBe(64);
    expect(certifiedCidrOf(id.cert, '10.3.0.2')).toBeUndefined();
  });
});

describe('revocation list', () => {
  it('revokes certificates issued until its time, not a later re-issue; refuses another authority and tampering', () => {
    const id = testIdentity(auth, opts, NOW);
    const list = { issuedAt: NOW, revoked: new Map([['node-b', id.cert.issuedAt + 1]]) };
    const b = signRevocations(auth.key, list);
    const back = verifyRevocations(b, auth.pub);
    expect(typeof back).toBe('object');
    if (typeof back === 'string') return;
    expect(isRevoked(back, id.cert)).toBe(true);
    expect(isRevoked(back, { node: 'node-b', issuedAt: id.cert.issuedAt + 2 })).toBe(false);
    expect(isRevoked(back, { node: 'node-c', issuedAt: 0 })).toBe(false);
    expect(verifyRevocations(b, testAuthority().pub)).toBe('authority');
    const t = Buffer.from(b);
    t[25]! ^= 1;
    expect(verifyRevocations(t, auth.pub)).toBe('signature');
    expect(verifyRevocations(b.subarray(0, 30), auth.pub)).toBeTypeOf('string');
  });
});

describe('pairwise keys', () => {
  it('both ends derive the same key per direction and epoch; directions and epochs differ', () => {
    const a = testIdentity(auth, { ...opts, node: 'node-a' }, NOW);
    const b = testIdentity(auth, opts, NOW);
    const sAB = sharedSecret(a.dhKey, b.cert.dhKey);
    const sBA = sharedSecret(b.dhKey, a.cert.dhKey);
    expect(sAB.equals(sBA)).toBe(true);
    const exp = (k: { export(): Buffer }) => k.export().toString('hex');
    const k1 = exp(pairwiseKey(sAB, a.cert.dhKey, b.cert.dhKey, 5n));
    expect(exp(pairwiseKey(sBA, a.cert.dhKey, b.cert.dhKey, 5n))).toBe(k1);
    expect(exp(pairwiseKey(sAB, b.cert.dhKey, a.cert.dhKey, 5n))).not.toBe(k1);
    expect(exp(pairwiseKey(sAB, a.cert.dhKey, b.cert.dhKey, 6n))).not.toBe(k1);
    const c = testIdentity(auth, { ...opts, node: 'node-c' }, NOW);
    expect(sharedSecret(c.dhKey, b.cert.dhKey).equals(sAB)).toBe(false);
    // A low-order public key gives no secret (OpenSSL refuses it before the all-zero check would).
    expect(() => sharedSecret(a.dhKey, Buffer.alloc(32))).toThrow();
  });
});

describe('afsteer identity commands', () => {
  const dir = mkdtempSync(join(tmpdir(), 'afsteer-identity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const out: string[] = [];
  const write = (s: string) => void out.push(s);
  const run = (...a: string[]) => runIdentity(a, write, NOW);
  const ca = join(dir, 'ca');
  const n2 = join(dir, 'node-b');

  it('init writes the authority (key 0600) and refuses to replace it', async () => {
    expect(await run('init', '--out', ca)).toBe(0);
    expect(statSync(join(ca, 'authority.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(ca, 'authority.pub'), 'utf8')).toMatch(/BEGIN PUBLIC KEY/);
    expect(await run('init', '--out', ca)).toBe(1);
  });
  it('issue writes node.key (0600), node.cert and authority.pub that load and verify; show prints it', async () => {
    const argv = ['issue', '--authority', ca, '--node', 'node-b', '--pod-cidr', '10.2.0.0/24', '--pod-cidr', 'fd00:2::/64'];
    expect(await run(...argv, '--address', '192.168.2.2', '--address', 'fd02::2', '--valid-days', '30', '--out', n2)).toBe(0);
    expect(statSync(join(n2, 'node.key')).mode & 0o777).toBe(0o600);
    const id = loadNodeIdentity(n2, NOW + 1000);
    expect(id.cert.node).toBe('node-b');
    expect(id.cert.notAfter - id.cert.issuedAt).toBe(30 * 86_400_000);
    expect(rawPublicKey(id.dhKey, 'x25519').equals(id.cert.dhKey)).toBe(true);
    out.length = 0;
    expect(await run('show', n2)).toBe(0);
    expect(out.join('')).toMatch(/node +node-b[\s\S]*30 days left[\s\S]*10\.2\.0\.0\/24 fd00:2::\/64[\s\S]*status +valid/);
    out.length = 0;
    expect(await runIdentity(['show', n2, '--json'], write, NOW + 31 * 86_400_000)).toBe(1);
    expect(JSON.parse(out.join('')).status).toBe('expired');
  });
  it('issue refuses a CIDR with host bits, a missing --address and bad --valid-days (usage, exit 2)', async () => {
    const base = ['issue', '--authority', ca, '--node', 'n', '--out', join(dir, 'x')];
    expect(await run(...base, '--pod-cidr', '10.2.0.1/24', '--address', '192.168.2.2')).toBe(2);
    expect(await run(...base, '--pod-cidr', '10.2.0.0/24')).toBe(2);
    expect(await run(...base, '--pod-cidr', '10.2.0.0/24', '--address', '1.2.3.4', '--valid-days', '0')).toBe(2);
  });
  it('loading refuses a node key readable by others, a key that is not the certificate’s, a certificate of another authority', async () => {
    const n3 = join(dir, 'node-c');
    expect(
      await run('issue', '--authority', ca, '--node', 'node-c', '--pod-cidr', '10.3.0.0/24', '--address', '192.168.3.2', '--out', n3),
    ).toBe(0);
    writeFileSync(join(n3, 'node.key'), readFileSync(join(n2, 'node.key')), { mode: 0o600 });
    expect(() => loadNodeIdentity(n3, NOW)).toThrow(/not the ones/);
    chmodSync(join(n3, 'node.key'), 0o644);
    expect(() => loadNodeIdentity(n3, NOW)).toThrow(/group\/others/);
    const other = join(dir, 'other-ca');
    expect(await run('init', '--out', other)).toBe(0);
    writeFileSync(join(n2, 'authority.pub'), readFileSync(join(other, 'authority.pub')));
    expect(() => loadNodeIdentity(n2, NOW)).toThrow(/refused: authority/);
    writeFileSync(join(n2, 'authority.pub'), readFileSync(join(ca, 'authority.pub')));
    expect(readCertFile(join(n2, 'node.cert')).length).toBeGreaterThan(100);
  });
  it('revoke writes a signed list and extends it on a second call', async () => {
    const file = join(dir, 'revoked.list');
    expect(await run('revoke', '--authority', ca, '--node', 'node-c', '--out', file)).toBe(0);
    expect(await runIdentity(['revoke', '--authority', ca, '--node', 'node-b', '--out', file], write, NOW + 5)).toBe(0);
    const list = loadRevocationFile(file, loadNodeIdentity(n2, NOW).authority);
    expect([...list.revoked.keys()].sort()).toEqual(['node-b', 'node-c']);
    expect(list.revoked.get('node-b')).toBe(NOW + 5);
  });
});
