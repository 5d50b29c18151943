/**
 * `afsteer identity init | issue | show | revoke`: the cluster authority's commands. init makes
 * the authority's key pair; issue certifies one node (its name, pod CIDRs, control addresses and
 * fresh keys) into a directory for that node; show prints what a node's certificate says;
 * revoke adds a node to the authority's signed revocation list.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Certificate, certCidr, cidrText, decodeCertificate, issueCertificate, verifyCertificate } from '../identity/certificate';
import {
  FILES,
  identityText,
  loadAuthorityKey,
  loadAuthorityPub,
  loadRevocationFile,
  nodeKeyText,
  readCertFile,
  writeIdentityFiles,
} from '../identity/identity-files';
import { authorityId, newKeyPair, privateKeyPem, rawPublicKey } from '../identity/keys';
import { emptyRevocations, signRevocations } from '../identity/revocation';
import { canonical, familyOf } from '../net/ip';
import { describeError } from '../util/describe-error';
import { printable } from './text';

const USAGE = `usage:
  afsteer identity init --out DIR
  afsteer identity issue --authority DIR --node NAME --pod-cidr CIDR [--pod-cidr CIDR…] --address IP [--address IP…] [--valid-days N] --out DIR2
  afsteer identity show DIR2 [--json]
  afsteer identity revoke --authority DIR --node NAME --out FILE
`;

/** Default validity of an issued certificate, days. */
export const DEFAULT_VALID_DAYS = 365;
const DAY_MS = 86_400_000;

class UsageError extends Error {}

/** Runs `afsteer identity ARGS`; resolves with the exit code (2: usage, 1: failed). */
export async function runIdentity(argv: string[], write: (s: string) => void, now = Date.now()): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'init':
        return init(rest, write);
      case 'issue':
        return issue(rest, write, now);
      case 'show':
        return show(rest, write, now);
      case 'revoke':
        return revoke(rest, write, now);
      case undefined:
      case 'help':
      case '--help':
        write(USAGE);
        return cmd ? 0 : 2;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(printable(cmd))}`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`afsteer identity: ${(err as Error).message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`afsteer identity ${cmd}: ${describeError(err)}\n`);
    return 1;
  }
}

function need(v: string | undefined, flag: string): string {
  if (!v) throw new UsageError(`${flag} is required`);
  return v;
}

function init(args: string[], write: (s: string) => void): number {
  const { values } = parseArgs({ args, options: { out: { type: 'string' } }, strict: true });
  const out = need(values.out, '--out');
  // Never over an existing authority: losing its key would orphan every certificate.
  if (existsSync(join(out, FILES.authorityKey)))
    throw new Error(`${join(out, FILES.authorityKey)} exists; refusing to replace an authority`);
  const { privateKey, publicKey } = newKeyPair('ed25519');
  writeIdentityFiles(out, [
    { name: FILES.authorityKey, text: privateKeyPem(privateKey), secret: true },
    { name: FILES.authorityPub, text: identityText.authorityPub(publicKey), secret: false },
  ]);
  write(`authority ${authorityId(publicKey).toString('hex')} written to ${out} (keep ${FILES.authorityKey} off the nodes)\n`);
  return 0;
}

function issue(args: string[], write: (s: string) => void, now: number): number {
  const { values } = parseArgs({
    args,
    options: {
      authority: { type: 'string' },
      node: { type: 'string' },
      'pod-cidr': { type: 'string', multiple: true },
      address: { type: 'string', multiple: true },
      'valid-days': { type: 'string' },
      out: { type: 'string' },
    },
    strict: true,
  });
  const dir = need(values.authority, '--authority');
  const node = need(values.node, '--node');
  const out = need(values.out, '--out');
  const cidrs = values['pod-cidr'] ?? [];
  const addresses = values.address ?? [];
  if (!cidrs.length) throw new UsageError('--pod-cidr is required (once per pod range)');
  if (!addresses.length) throw new UsageError('--address is required (once per control address)');
  const days = values['valid-days'] === undefined ? DEFAULT_VALID_DAYS : Number(values['valid-days']);
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new UsageError('--valid-days must be an integer 1–3650');
  const podCidrs = cidrs.map((c) => {
    try {
      return certCidr(c);
    } catch (err) {
      throw new UsageError(`--pod-cidr ${printable(c)}: ${(err as Error).message}`);
    }
  });
  for (const a of addresses) if (!familyOf(a)) throw new UsageError(`--address ${printable(a)}: not an IP address`);
  const authority = loadAuthorityKey(dir);
  const authorityPub = loadAuthorityPub(join(dir, FILES.authorityPub));
  if (!authorityId(authority).equals(authorityId(authorityPub)))
    throw new Error(`${dir}: ${FILES.authorityPub} is not the public half of ${FILES.authorityKey}`);
  const sign = newKeyPair('ed25519');
  const dh = newKeyPair('x25519');
  const cert = issueCertificate(authority, {
    node,
    issuedAt: now,
    notAfter: now + days * DAY_MS,
    signKey: rawPublicKey(sign.publicKey, 'ed25519'),
    dhKey: rawPublicKey(dh.publicKey, 'x25519'),
    podCidrs,
    addresses: addresses.map(canonical),
  });
  writeIdentityFiles(out, [
    { name: FILES.nodeKey, text: nodeKeyText(sign.privateKey, dh.privateKey), secret: true },
    { name: FILES.nodeCert, text: identityText.cert(cert), secret: false },
    { name: FILES.authorityPub, text: identityText.authorityPub(authorityPub), secret: false },
  ]);
  write(`certificate for ${node} written to ${out} (valid ${days} days, until ${new Date(now + days * DAY_MS).toISOString()})\n`);
  return 0;
}

/** What `identity show` prints (also its --json). */
export function describeCertificate(c: Certificate, status: string, now: number): Record<string, unknown> {
  return {
    node: c.node,
    authority: c.authorityId.toString('hex'),
    issuedAt: new Date(c.issuedAt).toISOString(),
    notAfter: new Date(c.notAfter).toISOString(),
    daysLeft: Math.floor((c.notAfter - now) / DAY_MS),
    podCidrs: c.podCidrs.map(cidrText),
    addresses: c.addresses,
    fingerprint: c.fingerprint,
    status,
  };
}

function show(args: string[], write: (s: string) => void, now: number): number {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' } }, strict: true, allowPositionals: true });
  if (positionals.length !== 1) throw new UsageError('show takes one directory');
  const dir = positionals[0]!;
  const cert = decodeCertificate(readCertFile(join(dir, FILES.nodeCert)));
  if (typeof cert === 'string') throw new Error(`${join(dir, FILES.nodeCert)}: not a certificate (${cert})`);
  const pubPath = join(dir, FILES.authorityPub);
  const status = existsSync(pubPath)
    ? (verifyCertificate(cert, loadAuthorityPub(pubPath), now) ?? 'valid')
    : 'unchecked (no authority.pub)';
  const d = describeCertificate(cert, status, now);
  if (values.json) {
    write(JSON.stringify(d, null, 2) + '\n');
  } else {
    write(
      `node         ${printable(cert.node)}\n` +
        `authority    ${d.authority}\n` +
        `valid        ${d.issuedAt} until ${d.notAfter} (${d.daysLeft} days left)\n` +
        `pod CIDRs    ${(d.podCidrs as string[]).join(' ')}\n` +
        `addresses    ${cert.addresses.join(' ')}\n` +
        `fingerprint  ${cert.fingerprint}\n` +
        `status       ${status}\n`,
    );
  }
  return status === 'valid' ? 0 : 1;
}

function revoke(args: string[], write: (s: string) => void, now: number): number {
  const { values } = parseArgs({
    args,
    options: { authority: { type: 'string' }, node: { type: 'string' }, out: { type: 'string' } },
    strict: true,
  });
  const dir = need(values.authority, '--authority');
  const node = need(values.node, '--node');
  const out = need(values.out, '--out');
  const authority = loadAuthorityKey(dir);
  // An existing list is extended (it must be this authority's); a new one started.
  const list = existsSync(out) ? loadRevocationFile(out, loadAuthorityPub(join(dir, FILES.authorityPub))) : emptyRevocations();
  list.revoked.set(node, now);
  list.issuedAt = Math.max(now, list.issuedAt + 1);
  const bytes = signRevocations(authority, list);
  writeIdentityFiles(dirname(resolve(out)), [{ name: basename(out), text: identityText.revocations(bytes), secret: false }]);
  write(`${node} revoked (certificates issued until ${new Date(now).toISOString()}); ${list.revoked.size} node(s) in ${out}\n`);
  return 0;
}
