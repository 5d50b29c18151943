/**
 * The address families, one vocabulary: numbers (4 | 6) inside afsteer, names ("IPv4" | "IPv6")
 * where the protocol and status speak, and the `{ ipv4?, ipv6? }` records both index. Pure.
 */

/** An IP family by number. */
export type Family = 4 | 6;
/** A family as the protocol names it. */
export type FamilyName = 'IPv4' | 'IPv6';
/** Both families, IPv4 first. */
export const FAMILIES: readonly Family[] = [4, 6];
/** Both family names, IPv4 first. */
export const FAMILY_NAMES = ['IPv4', 'IPv6'] as const satisfies readonly FamilyName[];

/** The name of a family: 4 → "IPv4". */
export function familyName(f: Family): FamilyName {
  return f === 4 ? 'IPv4' : 'IPv6';
}

/** The family of a name: "IPv6" → 6. */
export function familyNumber(n: FamilyName): Family {
  return n === 'IPv4' ? 4 : 6;
}

/** The other family: 4 → 6. */
export function other(f: Family): Family {
  return f === 4 ? 6 : 4;
}

/** The other family's name: "IPv4" → "IPv6". */
export function otherName(n: FamilyName): FamilyName {
  return n === 'IPv4' ? 'IPv6' : 'IPv4';
}

/** The family's member of a `{ ipv4?, ipv6? }` record (an address, a socket, a path, ...). */
export function addressOf<T>(obj: { ipv4?: T; ipv6?: T }, f: Family): T | undefined {
  return f === 4 ? obj.ipv4 : obj.ipv6;
}
