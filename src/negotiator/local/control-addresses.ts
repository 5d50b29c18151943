/** This node's default control addresses: the global addresses on the interface of its default routes. */
import { execFileSync } from 'node:child_process';

interface IpRoute {
  dev?: string;
}
interface IpAddr {
  addr_info?: { family: string; local: string; scope: string }[];
}

function ipJson<T>(args: string[]): T {
  return JSON.parse(
    execFileSync('ip', ['-j', ...args], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }) || '[]',
  ) as T;
}

/** The first global address of family on the interface of the family's default route, if any. */
export function defaultAddress(family: 4 | 6): string | undefined {
  try {
    const dev = ipJson<IpRoute[]>([`-${family}`, 'route', 'show', 'default']).find((r) => r.dev)?.dev;
    return dev ? globalAddress(dev, family) : undefined;
  } catch {
    return undefined;
  }
}

/** The first global address of family on interface dev, if any. */
function globalAddress(dev: string, family: 4 | 6): string | undefined {
  try {
    const addrs = ipJson<IpAddr[]>([`-${family}`, 'addr', 'show', 'dev', dev, 'scope', 'global']);
    return addrs.flatMap((a) => a.addr_info ?? []).find((i) => i.scope === 'global')?.local;
  } catch {
    return undefined;
  }
}

/** The global addresses (first of each family) on interface dev — a network's `interface`; throws when it has none. */
export function interfaceAddresses(dev: string): { ipv4?: string; ipv6?: string } {
  const ipv4 = globalAddress(dev, 4),
    ipv6 = globalAddress(dev, 6);
  if (!ipv4 && !ipv6) throw new Error(`interface ${dev}: no global address on either family (is it there, and up?)`);
  return { ...(ipv4 ? { ipv4 } : {}), ...(ipv6 ? { ipv6 } : {}) };
}

/** Configured addresses, else both families' defaults; throws when there are none. */
export function resolveAddresses(configured: { ipv4?: string; ipv6?: string } | undefined): { ipv4?: string; ipv6?: string } {
  if (configured) return configured;
  const ipv4 = defaultAddress(4),
    ipv6 = defaultAddress(6);
  if (!ipv4 && !ipv6) throw new Error('addresses: none configured and no default route with a global address on either family');
  return { ...(ipv4 ? { ipv4 } : {}), ...(ipv6 ? { ipv6 } : {}) };
}
