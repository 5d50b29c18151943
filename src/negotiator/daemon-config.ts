/** The afsteerd configuration file: zod schema with defaults, and its loading into one clear error line. */

import { isIPv4, isIPv6 } from 'node:net';
import * as z from 'zod/mini';
import { DEFAULT_CONTROL_SOCKET, DEFAULT_PIN_DIR, DEFAULT_PORT, DEFAULT_STATE_DIR } from '../defaults';
import { PolicySchema } from '../policy/schema';
import { readConfiguredFile, UnsafePathError } from '../util/safe-fs';
import { DEFAULT_POLICY_PARAMS } from './pairs/selection';
import { DEFAULT_MIN_SAMPLES, DEFAULT_PROBE } from './probing/probe-path';
import { DEFAULT_DEMAND } from './probing/traffic-proof';
import { NODE_NAME } from './protocol/frame';

/** Default listen address of the metrics endpoint and page (9617: next to node_exporter's 9100 range, unassigned in Prometheus's port list). */
export const DEFAULT_METRICS = '127.0.0.1:9617';

/** Most open connections of the metrics address by default: Prometheus and a few browser tabs, with room to spare; beyond, the longest idle is closed. */
export const DEFAULT_METRICS_MAX_CONNECTIONS = 64;

/** A listen address "host:port" or "[v6]:port" split; undefined when it is not one. */
export function parseListen(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined ? !isIPv6(host) : !isIPv4(host)) return undefined;
  return { host, port };
}

/** True for 127.0.0.0/8 and ::1. */
export function isLoopback(host: string): boolean {
  return isIPv4(host) ? host.startsWith('127.') : host === '::1' || /^(0{0,4}:){7}0{0,3}1$/.test(host) || host === '0:0:0:0:0:0:0:1';
}

/** Default multicast groups for discovery. */
export const DEFAULT_MCAST = { ipv4Group: '239.255.61.70', ipv6Group: 'ff02::6170' } as const;

const absPath = () => z.string().check(z.startsWith('/', 'must be an absolute path'), z.maxLength(4000));
const v4 = () => z.string().check(z.refine((s) => isIPv4(s), 'must be an IPv4 address'));
const v6 = () => z.string().check(z.refine((s) => isIPv6(s) && !s.includes('%'), 'must be an IPv6 address without a zone'));
const ms = (min: number, max: number, def: number) =>
  z._default(
    z.number().check(z.int('must be an integer number of ms'), z.gte(min, `must be ≥ ${min}`), z.lte(max, `must be ≤ ${max}`)),
    def,
  );

/** Control addresses of one node (at least one family). */
export const NodeAddressesSchema = z
  .strictObject({ ipv4: z.optional(v4()), ipv6: z.optional(v6()) })
  .check(z.refine((a) => a.ipv4 !== undefined || a.ipv6 !== undefined, 'needs ipv4, ipv6 or both'));

/** A static peer: its control addresses and, when it differs from ours, its port. */
export const StaticPeerSchema = z
  .strictObject({
    ipv4: z.optional(v4()),
    ipv6: z.optional(v6()),
    port: z.optional(z.number().check(z.int(), z.gte(1, 'must be 1–65535'), z.lte(65535, 'must be 1–65535'))),
  })
  .check(z.refine((a) => a.ipv4 !== undefined || a.ipv6 !== undefined, 'needs ipv4, ipv6 or both'));

/** Default etcd key prefix under which each node's record lives (prefix + node name). */
export const DEFAULT_ETCD_PREFIX = '/afsteer/nodes/';

const etcdEndpoint = () =>
  z.string().check(
    z.refine((s) => {
      try {
        const u = new URL(s);
        return (
          (u.protocol === 'http:' || u.protocol === 'https:') &&
          u.hostname !== '' &&
          u.port !== '' &&
          (u.pathname === '/' || u.pathname === '') &&
          !u.search &&
          !u.hash &&
          !u.username
        );
      } catch {
        return false;
      }
    }, 'must be http(s)://host:port'),
  );

/** etcd discovery: where the records live, TLS files, and the lease's TTL. */
export const EtcdDiscoverySchema = z
  .strictObject({
    endpoints: z.array(etcdEndpoint()).check(z.minLength(1, 'needs at least one endpoint'), z.maxLength(64)),
    prefix: z._default(
      z.string().check(z.regex(/^\/[\x21-\x7e]{0,200}\/$/, 'must start and end with "/" (printable ASCII, no spaces)')),
      DEFAULT_ETCD_PREFIX,
    ),
    /** etcd user this node logs in as (default: the node name) when passwordFile is set. */
    user: z.optional(z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be an etcd user name'))),
    /** File holding this node's etcd password (0600): afsteerd logs in to etcd with it (etcd RBAC: one user and role per node). */
    passwordFile: z.optional(absPath()),
    /** CA bundle to verify etcd's certificate (https endpoints). */
    ca: z.optional(absPath()),
    /** Client certificate and key for etcd's mutual TLS (both or neither). */
    cert: z.optional(absPath()),
    key: z.optional(absPath()),
    /** TTL of this node's lease: a node that stops keeping it alive is dropped this long after. */
    leaseTtlS: z._default(
      z.number().check(z.int('must be an integer number of s'), z.gte(2, 'must be ≥ 2'), z.lte(3600, 'must be ≤ 3600')),
      10,
    ),
    /** A record written longer ago than this (by its writer's clock) is refused; writers re-put theirs every quarter of it. */
    maxRecordAgeS: z._default(
      z.number().check(z.int('must be an integer number of s'), z.gte(20, 'must be ≥ 20'), z.lte(86_400, 'must be ≤ 86400')),
      300,
    ),
  })
  .check(
    z.refine((e) => (e.cert === undefined) === (e.key === undefined), { message: 'cert and key go together', path: ['cert'] }),
    z.refine((e) => e.user === undefined || e.passwordFile !== undefined, { message: 'user needs passwordFile', path: ['passwordFile'] }),
    z.refine((e) => !(e.ca || e.cert) || e.endpoints.every((u) => u.startsWith('https:')), {
      message: 'ca/cert need https endpoints',
      path: ['endpoints'],
    }),
  );
/** A parsed etcd discovery config. */
export type EtcdDiscoveryConfig = z.infer<typeof EtcdDiscoverySchema>;

const port = () => z.number().check(z.int(), z.gte(1, 'must be 1–65535'), z.lte(65534, 'must be 1–65534 (the echo port is port + 1)'));

/** A CNI network name (a conflist's `name`, a NetworkAttachmentDefinition's config name). */
const networkName = () =>
  z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, 'must be a CNI network name ([A-Za-z0-9._-], starting alphanumeric)'));

/**
 * A secondary network (the transport networks telco CNFs carry traffic on, attached by Multus):
 * its name as the pods' attachments give it, this node's addresses on it (afsteerd binds, probes
 * and negotiates there; absent: over the primary's addresses on this network's own port — the
 * primary's measurements, and status says so) or the interface holding them, its port (default: afsteerd's) and its static peers
 * (their addresses on this network; default none: multicast on it when discovery.multicast is on).
 */
export const NetworkSchema = z.strictObject({
  name: networkName(),
  addresses: z.optional(NodeAddressesSchema),
  /** Instead of addresses (one config for every node): the interface holding this node's addresses on the network, its first global address of each family at start. */
  interface: z.optional(z.string().check(z.regex(/^[A-Za-z0-9._@-]{1,15}$/, 'must be an interface name'))),
  port: z.optional(port()),
  static: z._default(z.array(StaticPeerSchema).check(z.maxLength(4096)), []),
});
/** One configured secondary network. */
export type NetworkConfig = z.infer<typeof NetworkSchema>;

/** Why a networks list cannot work (two networks on one socket, a name twice), or undefined. */
export function networksProblem(c: {
  port: number;
  addresses?: { ipv4?: string; ipv6?: string };
  primaryNetwork?: string;
  networks: NetworkConfig[];
  discovery?: { multicast?: unknown };
}): { message: string; path: (string | number)[] } | undefined {
  if (!c.networks.length) return undefined;
  if (c.primaryNetwork === undefined)
    return {
      message: 'needs primaryNetwork (the name of the primary network, e.g. its conflist name) when networks are configured',
      path: ['primaryNetwork'],
    };
  const names = new Set([c.primaryNetwork]);
  // Sockets: (address or "primary", port) and the echo port beside it.
  const sockets = new Map<string, string>();
  const claim = (who: string, where: string[], p: number): string | undefined => {
    for (const w of where)
      for (const q of [p, p + 1]) {
        const k = `${w}|${q}`;
        const had = sockets.get(k);
        if (had && had !== who) return had;
        sockets.set(k, who);
      }
    return undefined;
  };
  // With multicast discovery every negotiator binds the wildcard address: ports must differ.
  const wildcard = Boolean(c.discovery?.multicast);
  const primaryWhere = wildcard
    ? ['*']
    : ['primary', ...[c.addresses?.ipv4, c.addresses?.ipv6].filter((a): a is string => a !== undefined)];
  claim(c.primaryNetwork, primaryWhere, c.port);
  for (const [i, n] of c.networks.entries()) {
    if (names.has(n.name)) return { message: `${n.name} is named twice (primaryNetwork included)`, path: ['networks', i, 'name'] };
    if (n.addresses && n.interface)
      return { message: `${n.name}: give addresses or interface, not both`, path: ['networks', i, 'interface'] };
    names.add(n.name);
    const own = n.addresses
      ? [n.addresses.ipv4, n.addresses.ipv6].filter((a): a is string => a !== undefined)
      : n.interface
        ? [`if:${n.interface}`]
        : undefined;
    const where = own && !wildcard ? own : primaryWhere;
    const clash = claim(n.name, where, n.port ?? c.port);
    if (clash)
      return {
        message: wildcard
          ? `${n.name} would share a port (or its echo port, port + 1) with ${clash}: with multicast discovery every network binds the wildcard address, so each needs a port of its own`
          : own
            ? `${n.name} would share an address and port (or its echo port, port + 1) with ${clash}: give it its own addresses or port`
            : `${n.name} has no addresses of its own, so it shares ${clash}'s: it needs a port of its own (not ${clash}'s port or port + 1)`,
        path: ['networks', i, own && !wildcard ? (n.addresses ? 'addresses' : 'interface') : 'port'],
      };
  }
  return undefined;
}

/** The daemon config. */
export const DaemonConfigSchema = z
  .strictObject({
    nodeName: z.string().check(z.regex(NODE_NAME, 'must be 1–63 characters [A-Za-z0-9._-], starting alphanumeric')),
    pinDir: z._default(absPath(), DEFAULT_PIN_DIR),
    stateDir: z._default(absPath(), DEFAULT_STATE_DIR),
    controlSocket: z._default(absPath().check(z.maxLength(107, 'must fit a unix socket path (≤ 107 bytes)')), DEFAULT_CONTROL_SOCKET),
    /** This node's control addresses; default: the addresses on the interface of the default routes. */
    addresses: z.optional(NodeAddressesSchema),
    port: z._default(z.number().check(z.int(), z.gte(1, 'must be 1–65535'), z.lte(65535, 'must be 1–65535')), DEFAULT_PORT),
    /** The cluster key (auth cluster-key and both). */
    keyFile: z.optional(absPath()),
    /** This node's identity directory (node.key, node.cert, authority.pub: `afsteer identity issue`), for auth identity and both. */
    identity: z.optional(absPath()),
    /**
     * How datagrams and records are authenticated: cluster-key (the shared key), identity (each
     * node's certificate and pairwise keys), both (the migration step). Default: identity with
     * `identity` only, cluster-key with `keyFile` only, both with both.
     */
    auth: z.optional(z.enum(['cluster-key', 'identity', 'both'])),
    /** The authority's signed revocation list (`afsteer identity revoke`), re-read when it changes. */
    revocations: z.optional(absPath()),
    discovery: z.prefault(
      z.strictObject({
        multicast: z.optional(
          z.union([
            z.literal(false),
            z.strictObject({
              ipv4Group: z._default(v4(), DEFAULT_MCAST.ipv4Group),
              ipv6Group: z._default(v6(), DEFAULT_MCAST.ipv6Group),
              /** Interface to send and join on; default: the one holding the control address. */
              interface: z.optional(z.string().check(z.regex(/^[A-Za-z0-9._@-]{1,15}$/, 'must be an interface name'))),
            }),
          ]),
        ),
        static: z._default(z.array(StaticPeerSchema).check(z.maxLength(4096)), []),
        /** Records in etcd (for clusters spanning subnets multicast does not cross). */
        etcd: z.optional(EtcdDiscoverySchema),
      }),
      { static: [] },
    ),
    policy: z._default(PolicySchema, { criterion: 'lowest-latency' }),
    /** Protected pairs (policy.protect): the node-wide cap on duplicated bytes, and when on-suspicion stops. */
    protection: z.prefault(
      z.strictObject({
        /** Duplicated bytes per second this node may send, all pairs together (default 12.5 MB/s = 100 Mbit/s); 0 allows none. */
        budgetBytesPerSecond: z._default(z.number().check(z.int(), z.gte(0, 'must be ≥ 0'), z.lte(1e11, 'must be ≤ 1e11')), 12_500_000),
        /** Burst of the budget, bytes (default: a tenth of a second of the rate, at least 64 KiB). */
        burstBytes: z.optional(z.number().check(z.int(), z.gte(0, 'must be ≥ 0'), z.lte(1e10, 'must be ≤ 1e10'))),
        /** This node deduplicates protected pairs and announces it (dedup-v1); false: it behaves as a node without protection (no pair of it is protected). */
        dedup: z._default(z.boolean(), true),
        /** on-suspicion: how long the pair's families must look healthy (and a switch be past) before duplication stops. */
        settleMs: ms(0, 600_000, 2000),
      }),
      {},
    ),
    timers: z.prefault(
      z.strictObject({
        announceIntervalMs: ms(50, 60_000, 1000),
        /** An unchanged announcement is repeated to every peer this often (default: a quarter of peerTimeoutMs); a change goes at once. */
        announceRefreshMs: z.optional(
          z.number().check(z.int('must be an integer number of ms'), z.gte(50, 'must be ≥ 50'), z.lte(600_000, 'must be ≤ 600000')),
        ),
        peerTimeoutMs: ms(200, 600_000, 5000),
        /** After a peer ages out, its pods stay registered (decapsulated) this long before they are unregistered. */
        remoteRetentionMs: ms(0, 86_400_000, 300_000),
        pairIdleMs: ms(1000, 86_400_000, 60_000),
        evalIntervalMs: ms(20, 10_000, 250),
        negotiateIntervalMs: ms(50, 60_000, 1000),
        demandPollMs: ms(5, 10_000, 50),
        rescanMs: ms(100, 600_000, 5000),
        /** How often the steering index is re-read whole from the maps (a healer; changes by other writers are followed at once). */
        mapsResyncMs: ms(100, 3_600_000, 60_000),
      }),
      {},
    ),
    probe: z.prefault(
      z.strictObject({
        activeIntervalMs: ms(5, 10_000, DEFAULT_PROBE.activeIntervalMs),
        idleIntervalMs: ms(1000, 600_000, DEFAULT_PROBE.idleIntervalMs),
        window: z._default(z.number().check(z.int(), z.gte(10, 'must be ≥ 10'), z.lte(10_000, 'must be ≤ 10000')), DEFAULT_PROBE.window),
        blackholeAfter: z._default(
          z.number().check(z.int(), z.gte(1, 'must be ≥ 1'), z.lte(100, 'must be ≤ 100')),
          DEFAULT_PROBE.blackholeAfter,
        ),
        minTimeoutMs: ms(5, 10_000, DEFAULT_PROBE.minTimeoutMs),
        /** Outcomes a path needs before a pair over it is evaluated. */
        minSamples: z._default(z.number().check(z.int(), z.gte(1), z.lte(10_000)), DEFAULT_MIN_SAMPLES),
        /**
         * Interval of a path toward a peer with pairs whose own traffic proves it (answered over
         * that family, as the data plane saw it): demand-style probing; fast again at once when
         * the traffic goes unanswered or a probe is lost. 0: peers with pairs always at activeIntervalMs.
         */
        demandIntervalMs: ms(0, 60_000, DEFAULT_DEMAND.demandIntervalMs),
      }),
      {},
    ),
    selection: z.prefault(
      z.strictObject({
        marginRatio: z._default(z.number().check(z.gte(0), z.lte(10)), DEFAULT_POLICY_PARAMS.marginRatio),
        latencyMarginMs: z._default(z.number().check(z.gte(0), z.lte(60_000)), DEFAULT_POLICY_PARAMS.latencyMarginMs),
        lossMargin: z._default(z.number().check(z.gte(0), z.lte(1)), DEFAULT_POLICY_PARAMS.lossMargin),
        scoreMargin: z._default(z.number().check(z.gte(0), z.lte(1e6)), DEFAULT_POLICY_PARAMS.scoreMargin),
        intervals: z._default(z.number().check(z.int(), z.gte(1), z.lte(1000)), DEFAULT_POLICY_PARAMS.intervals),
        holdDownMs: ms(0, 86_400_000, DEFAULT_POLICY_PARAMS.holdDownMs),
      }),
      {},
    ),
    logLevel: z._default(z.enum(['debug', 'info', 'warn', 'error']), 'info'),
    /** Prometheus metrics, history and the page: "host:port" ("[::1]:9617" for IPv6), "" off. Loopback unless metricsAllowRemote. */
    metrics: z._default(
      z
        .string()
        .check(
          z.refine(
            (s) => s === '' || parseListen(s) !== undefined,
            'must be "host:port" with an IP address (e.g. "127.0.0.1:9617"), or "" for off',
          ),
        ),
      DEFAULT_METRICS,
    ),
    /** Lets `metrics` listen on a non-loopback address (the page and metrics carry no secrets, but do describe the cluster). */
    metricsAllowRemote: z._default(z.boolean(), false),
    /** Most open connections of the metrics address; a connection beyond closes the one idle the longest (or itself when all are busy). */
    metricsMaxConnections: z._default(
      z.number().check(z.int('must be an integer'), z.gte(4, 'must be ≥ 4'), z.lte(100_000, 'must be ≤ 100000')),
      DEFAULT_METRICS_MAX_CONNECTIONS,
    ),
    /** V8's --optimize-for-size for afsteerd (not the plugin): ~125 against ~200 MB RSS at 1,000 peers, ~5 points more of a core (docs/benchmarks.md, Scale). */
    optimizeForMemory: z._default(z.boolean(), true),
    /** The primary network's name (its conflist's `name`): attachments on it are steered over `addresses`. Needed with `networks`. */
    primaryNetwork: z.optional(networkName()),
    /** Secondary networks (Multus attachments): each discovered, probed and negotiated over its own addresses. */
    networks: z._default(z.array(NetworkSchema).check(z.maxLength(64)), []),
  })
  .check(
    z.refine((c) => c.keyFile !== undefined || c.identity !== undefined, { message: 'needs keyFile, identity or both', path: ['keyFile'] }),
    z.refine((c) => c.auth === undefined || c.auth === 'identity' || c.keyFile !== undefined, {
      message: 'auth cluster-key and both need keyFile',
      path: ['keyFile'],
    }),
    z.refine((c) => c.auth === undefined || c.auth === 'cluster-key' || c.identity !== undefined, {
      message: 'auth identity and both need identity',
      path: ['identity'],
    }),
    z.refine((c) => c.revocations === undefined || c.identity !== undefined, { message: 'needs identity', path: ['revocations'] }),
    z.superRefine((c, ctx) => {
      const p = networksProblem(c);
      if (p) ctx.addIssue({ code: 'custom', message: p.message, path: p.path, input: c });
    }),
    z.refine((c) => c.metrics === '' || c.metricsAllowRemote || !parseListen(c.metrics) || isLoopback(parseListen(c.metrics)!.host), {
      message: 'must be a loopback address unless metricsAllowRemote is true',
      path: ['metrics'],
    }),
  );

/** A parsed, defaulted daemon config. */
export type DaemonConfig = z.infer<typeof DaemonConfigSchema>;

/** The auth mode a config means (its `auth`, else what its keyFile / identity imply). */
export function authModeOf(c: Pick<DaemonConfig, 'auth' | 'keyFile' | 'identity'>): 'cluster-key' | 'identity' | 'both' {
  return c.auth ?? (c.identity === undefined ? 'cluster-key' : c.keyFile === undefined ? 'identity' : 'both');
}

/** A config problem: one line naming the key. */
export class ConfigError extends Error {}

/** Parses config text; the error names the first bad key. */
export function parseDaemonConfig(text: string, source = 'config'): DaemonConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  const r = DaemonConfigSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    const at = i.path.map(String);
    if (i.code === 'unrecognized_keys') throw new ConfigError(`${source}: ${[...at, i.keys[0]].join('.')}: unknown key`);
    const key = at.length ? at.join('.') : '(top level)';
    const msg =
      i.code === 'invalid_type'
        ? `must be ${i.expected === 'object' ? 'an object' : i.expected === 'int' ? 'an integer' : `a ${i.expected}`}`
        : i.code === 'invalid_value'
          ? `must be one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}`
          : i.message;
    throw new ConfigError(`${source}: ${key}: ${msg}`);
  }
  return r.data;
}

/** Reads (safe-fs readConfiguredFile: no FIFO or device, nothing of another user's, at most 1 MiB) and parses the config file. */
export function loadDaemonConfig(path: string): DaemonConfig {
  let text: string;
  try {
    text = readConfiguredFile(path).toString('utf8');
  } catch (err) {
    const why = err instanceof UnsafePathError ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    throw new ConfigError(`cannot read config ${path}: ${why}`);
  }
  return parseDaemonConfig(text, path);
}
