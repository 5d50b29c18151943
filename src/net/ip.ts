/** IP address and CIDR parsing (strict: no zones, no leading zeros) and conversions between text and network-order bytes. */
import { isIPv4, isIPv6 } from 'node:net';
import type { Family } from './family';

/** An interface address with its prefix, as CNI results carry it ("10.0.0.2/24"). */
export interface Cidr {
  family: Family;
  /** Address in canonical text form. */
  address: string;
  prefix: number;
}

/** Why text is not "address/prefix" (decimal prefix without leading zeros, in range; no zone), or undefined. */
export function cidrProblem(text: string): string | undefined {
  const m = /^([^/]+)\/(0|[1-9][0-9]{0,2})$/.exec(text);
  if (!m) return 'must be ADDRESS/PREFIX with a decimal prefix without leading zeros';
  const family = familyOf(m[1]!);
  if (!family) return `${JSON.stringify(m[1])} is not an IP address (zones such as %eth0 are not accepted)`;
  if (Number(m[2]) > (family === 4 ? 32 : 128)) return `prefix /${m[2]} is too long for IPv${family}`;
  return undefined;
}

/** Parses "addr/prefix"; throws a descriptive error when it is not a valid CIDR (see cidrProblem). */
export function parseCidr(text: string): Cidr {
  const problem = cidrProblem(text);
  if (problem) throw new Error(`not a valid CIDR: ${JSON.stringify(text)}: ${problem}`);
  const [address, prefix] = text.split('/') as [string, string];
  return { family: familyOf(address)!, address: canonical(address), prefix: Number(prefix) };
}

/** True when text is a valid CIDR (see cidrProblem). */
export function isCidr(text: string): boolean {
  return cidrProblem(text) === undefined;
}

/** Address family of a bare address, or undefined; a zone-scoped address ("fe80::1%eth0") is not an address here. */
export function familyOf(address: string): Family | undefined {
  return isIPv4(address) ? 4 : isIPv6(address) && !address.includes('%') ? 6 : undefined;
}

/** Network-order bytes of a bare IPv4 (4 bytes) or IPv6 (16 bytes) address. */
export function addressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(address.split('.').map((p) => Number(p)));
  if (familyOf(address) !== 6) throw new Error(`not an IP address: ${JSON.stringify(address)}`);
  let text = address;
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4tail) {
    const b = addressBytes(v4tail[1]!);
    text = text.slice(0, -v4tail[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(parseInt(g, 16), i * 2);
  return out;
}

/** Canonical text form of a 4- or 16-byte network-order address. */
export function bytesToAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new Error(`address must be 4 or 16 bytes, got ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952: compress the longest run (length >= 2) of zero groups.
  let best = -1,
    bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Addresses canonical() has seen, up to CANONICAL_MEMO entries (then it starts again). */
const canonicalMemo = new Map<string, string>();
/** Bound of canonical()'s memo: a daemon sees each peer's and pod's few addresses again and again. */
export const CANONICAL_MEMO = 8192;

/** Canonical text form of an address (so "fd00:0::5" and "fd00::5" compare equal). */
export function canonical(address: string): string {
  const known = canonicalMemo.get(address);
  if (known !== undefined) return known;
  const c = bytesToAddress(addressBytes(address));
  if (canonicalMemo.size >= CANONICAL_MEMO) canonicalMemo.clear();
  canonicalMemo.set(address, c);
  return c;
}
