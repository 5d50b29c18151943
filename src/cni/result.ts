/** CNI result schema (0.3.x, 0.4.0, 1.x) and conversion between afsteer's internal form and each version's output. */
import * as z from 'zod/mini';
import { familyOf, isCidr, parseCidr } from '../net/ip';
import { resultHasIpVersion } from './version';

const cidr = z.string().check(z.refine(isCidr, 'must be an address with prefix, e.g. 10.1.0.5/24'));
const ip = z.string().check(z.refine((s) => familyOf(s) !== undefined, 'must be an IP address'));

/** One interface entry of a result. */
export const InterfaceSchema = z.looseObject({
  name: z.string().check(z.minLength(1)),
  mac: z.optional(z.string()),
  mtu: z.optional(z.number().check(z.int())),
  sandbox: z.optional(z.string()),
});

/** One IP entry; version is present in 0.3.x/0.4.0 results and dropped internally. */
export const IpSchema = z.looseObject({
  version: z.optional(z.enum(['4', '6'])),
  address: cidr,
  gateway: z.optional(ip),
  interface: z.optional(z.number().check(z.int(), z.gte(0))),
});

/** One route entry. */
export const RouteSchema = z.looseObject({
  dst: cidr,
  gw: z.optional(ip),
});

/** A CNI result of any supported version. */
export const ResultSchema = z.looseObject({
  cniVersion: z.optional(z.string()),
  interfaces: z.optional(z.array(InterfaceSchema)),
  ips: z.optional(z.array(IpSchema)),
  routes: z.optional(z.array(RouteSchema)),
  dns: z.optional(z.looseObject({})),
});

/** A parsed result (internal, version-neutral form). */
export type Result = z.infer<typeof ResultSchema>;
export type ResultIp = z.infer<typeof IpSchema>;
export type ResultRoute = z.infer<typeof RouteSchema>;

/** Parses a prevResult or IPAM result into the internal form (drops ips[].version). */
export function parseResult(raw: unknown, what: string): Result {
  const r = ResultSchema.safeParse(raw);
  if (!r.success) throw new Error(`${what} is not a valid CNI result: ${z.prettifyError(r.error)}`);
  const out: Result = { ...r.data };
  if (out.ips) out.ips = out.ips.map(({ version: _v, ...rest }) => rest);
  return out;
}

/** Serialises a result for the given cniVersion (adds ips[].version before 1.0.0). */
export function formatResult(result: Result, cniVersion: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...result, cniVersion };
  if (result.ips) {
    out.ips = result.ips.map((i) => {
      const { version: _v, ...rest } = i;
      return resultHasIpVersion(cniVersion) ? { version: String(parseCidr(i.address).family), ...rest } : rest;
    });
  }
  return out;
}

/**
 * The ips a result gives the container interface at index ifIndex: those naming it, and those
 * naming no interface at all. An ip naming another interface (the host veth, the bridge) is not
 * the pod's, also when the result lists no container interface.
 */
export function podIps(result: Result, ifIndex: number | undefined): ResultIp[] {
  return (result.ips ?? []).filter((i) => i.interface === undefined || (ifIndex !== undefined && i.interface === ifIndex));
}

/** Families (4, 6) that a result assigns to the interface at index ifIndex (see podIps). */
export function familiesFor(result: Result, ifIndex: number | undefined): Set<4 | 6> {
  return new Set(podIps(result, ifIndex).map((i) => parseCidr(i.address).family));
}

/** Index in result.interfaces of the container interface ifname in sandbox, or undefined. */
export function containerInterfaceIndex(result: Result, ifname: string): number | undefined {
  const idx = (result.interfaces ?? []).findIndex((i) => i.name === ifname && i.sandbox);
  return idx >= 0 ? idx : undefined;
}
