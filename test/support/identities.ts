/**
 * Test identities: an authority and node certificates made in memory (no files), with the same
 * code the CLI uses, for the unit tests and the in-memory daemons; and, for the root tests, node
 * identity directories written through the real `afsteer identity` commands.
 */
import type { KeyObject } from 'node:crypto';
import { type CertCidr, certCidr, decodeCertificate, issueCertificate } from '../../src/identity/certificate';
import type { NodeIdentity } from '../../src/identity/identity-files';
import { newKeyPair, rawPublicKey } from '../../src/identity/keys';

/** A test authority: its key pair. */
export interface TestAuthority {
  key: KeyObject;
  pub: KeyObject;
}

/** A new authority. */
export function testAuthority(): TestAuthority {
  const { privateKey, publicKey } = newKeyPair('ed25519');
  return { key: privateKey, pub: publicKey };
}

/** What a test certificate says (defaults: valid from an hour ago for a year). */
export interface TestCertOptions {
  node: string;
  podCidrs: string[];
  addresses: string[];
  issuedAt?: number;
  notAfter?: number;
}

/** A node identity certified by authority (the verified form afsteerd loads from its directory). */
export function testIdentity(authority: TestAuthority, o: TestCertOptions, now = Date.now()): NodeIdentity {
  const sign = newKeyPair('ed25519');
  const dh = newKeyPair('x25519');
  const issuedAt = o.issuedAt ?? now - 3_600_000;
  const bytes = issueCertificate(authority.key, {
    node: o.node,
    issuedAt,
    notAfter: o.notAfter ?? issuedAt + 365 * 86_400_000,
    signKey: rawPublicKey(sign.publicKey, 'ed25519'),
    dhKey: rawPublicKey(dh.publicKey, 'x25519'),
    podCidrs: o.podCidrs.map(certCidr) as CertCidr[],
    addresses: o.addresses,
  });
  const cert = decodeCertificate(bytes);
  if (typeof cert === 'string') throw new Error(`test certificate refused: ${cert}`);
  return { cert, signKey: sign.privateKey, dhKey: dh.privateKey, authority: authority.pub };
}

/** Runs the real `dist/afsteer identity ARGS` (the commands scripts rely on); resolves with its stdout. */
export async function identityCmd(args: string[]): Promise<string> {
  const { execFileP } = await import('./process');
  const { AFSTEER_BIN } = await import('./world');
  const { stdout } = await execFileP(AFSTEER_BIN, ['identity', ...args], { encoding: 'utf8', timeout: 10_000 });
  return String(stdout);
}

/**
 * An authority in dir/ca and one identity directory per simulated node (dir/id-node-NAME), each
 * certified for the node's own pod ranges and control addresses, through the real CLI. Returns
 * the authority directory and each node's identity directory by node name ('a', 'b', 'c').
 */
export async function issueSimIdentities(t: {
  dir: string;
  nodes: { name: string; podV4: string; podV6: string }[];
  nodeAddresses(n: { name: string }): { ipv4: string; ipv6: string };
}): Promise<{ ca: string; dirs: Record<string, string> }> {
  const { join } = await import('node:path');
  const ca = join(t.dir, 'ca');
  await identityCmd(['init', '--out', ca]);
  const dirs: Record<string, string> = {};
  for (const n of t.nodes) {
    const a = t.nodeAddresses(n);
    dirs[n.name] = join(t.dir, `id-node-${n.name}`);
    await identityCmd([
      'issue',
      '--authority',
      ca,
      '--node',
      `node-${n.name}`,
      '--pod-cidr',
      n.podV4,
      '--pod-cidr',
      n.podV6,
      '--address',
      a.ipv4,
      '--address',
      a.ipv6,
      '--out',
      dirs[n.name]!,
    ]);
  }
  return { ca, dirs };
}
