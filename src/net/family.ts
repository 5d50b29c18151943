/** One vocabulary for the two address families: numbers, names, the other one, and an object's address of one. */

/** An address family by number. */
export type Family = 4 | 6;
/** Both families, IPv4 first. */
export const FAMILIES = [4, 6] as const;
/** A family's name in messages and logs. */
export type FamilyLabel = 'IPv4' | 'IPv6';

/** 'IPv4' or 'IPv6'. */
export function familyName(f: Family): FamilyLabel {
  return f === 4 ? 'IPv4' : 'IPv6';
}

/** The other family. */
export function other(f: Family): Family {
  return f === 4 ? 6 : 4;
}

/** The address of family f of something with ipv4/ipv6 addresses. */
export function addressOf(a: { ipv4?: string | undefined; ipv6?: string | undefined }, f: Family): string | undefined {
  return f === 4 ? a.ipv4 : a.ipv6;
}
