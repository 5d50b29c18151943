/**
 * One afsteerd negotiator per network (pure): the primary network's, and one for each configured
 * secondary network — the config each runs with (its port, discovery), the addresses it binds,
 * probes and negotiates over, whether its measurements are its own or the primary network's, and
 * which of the node's attachments are its pods. A pair is only ever between two attachments of
 * the same network, steered by that network's measurements.
 */
import { createHmac } from 'node:crypto';
import type { DaemonConfig } from '../daemon-config';

/** Addresses of this node on one network. */
export interface NodeAddresses {
  ipv4?: string;
  ipv6?: string;
}

/** One network's negotiator, as planned. */
export interface NetworkPlan {
  /** The network's name; for the primary, primaryNetwork (undefined when no networks are configured). */
  name: string | undefined;
  primary: boolean;
  /** The config it runs with: the node's, with this network's port and discovery. */
  cfg: DaemonConfig;
  /** The addresses it binds, probes and negotiates over. */
  addresses: NodeAddresses;
  /** 'own': measured over this network's addresses; 'primary': it has none, so over the primary's (status says so). */
  measuredBy: 'own' | 'primary';
}

/**
 * The negotiators of a node: the primary's first (the node's config as it is, but for
 * `networks`), then each secondary network's — its own addresses and static peers (multicast on
 * its interface when discovery.multicast is on; never etcd, whose records carry the primary's
 * addresses), or, without addresses, the primary's addresses and discovery on its own port.
 */
export function planNetworks(cfg: DaemonConfig, primaryAddresses: NodeAddresses): NetworkPlan[] {
  const plans: NetworkPlan[] = [{ name: cfg.primaryNetwork, primary: true, cfg, addresses: primaryAddresses, measuredBy: 'own' }];
  for (const n of cfg.networks) {
    const port = n.port ?? cfg.port;
    const mc = cfg.discovery.multicast;
    const discovery: DaemonConfig['discovery'] = n.addresses
      ? { static: n.static, ...(mc ? { multicast: { ipv4Group: mc.ipv4Group, ipv6Group: mc.ipv6Group } } : {}) }
      : { static: [...cfg.discovery.static.map((p) => ({ ...p, port })), ...n.static], ...(mc ? { multicast: mc } : {}) };
    plans.push({
      name: n.name,
      primary: false,
      cfg: { ...cfg, port, discovery, networks: [] },
      addresses: n.addresses ?? primaryAddresses,
      measuredBy: n.addresses ? 'own' : 'primary',
    });
  }
  return plans;
}

/**
 * The key a secondary network's negotiator authenticates with: HMAC-SHA-256 of the cluster key
 * over the network's name, so a datagram of one network is never accepted by another's (they may
 * share addresses or multicast groups); the primary keeps the cluster key as it is.
 */
export function networkKey(key: Buffer, plan: Pick<NetworkPlan, 'name' | 'primary'>): Buffer {
  return plan.primary ? key : createHmac('sha256', key).update(`afsteer network ${plan.name}`).digest();
}

/**
 * Whose an attachment is (pure): the name of the plan that steers it (the primary's is
 * cfg.primaryNetwork, undefined when no networks are configured: then every attachment is the
 * primary's, as before networks existed), or null for a network this node does not know (never steered).
 */
export function networkOf(attachmentNetwork: string, cfg: Pick<DaemonConfig, 'primaryNetwork' | 'networks'>): string | undefined | null {
  if (!cfg.networks.length) return cfg.primaryNetwork;
  if (attachmentNetwork === cfg.primaryNetwork) return cfg.primaryNetwork;
  return cfg.networks.some((n) => n.name === attachmentNetwork) ? attachmentNetwork : null;
}
