/**
 * The installer's decisions, pure (no file system): which CNI config is the node's primary one,
 * chaining afsteer into it and out again, the daemon config from flags, --peer parsing.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** CNI config file extensions, as libcni's ConfFiles and containerd's go-cni accept them. */
export const CNI_CONF_EXTENSIONS = ['.conf', '.conflist', '.json'] as const;

/**
 * Plugin types afsteer chains after: they create a veth pair whose host side afsteer attaches to
 * (bridge, ptp), or an interface with no host-side veth, where afsteer's programs go inside the
 * pod (macvlan, ipvlan, host-device: secondary networks) — what afsteer is tested with. Others
 * (cilium-cni, calico: veth, but their own tc/BPF programs own the host veth) are refused unless
 * the operator names them with --allow-plugin.
 */
export const VETH_PLUGINS = ['bridge', 'ptp'] as const;
/** Plugins of secondary networks (no host-side veth) afsteer chains after. */
export const SECONDARY_PLUGINS = ['macvlan', 'ipvlan', 'host-device'] as const;

/** True for a file name in the CNI config dir that a runtime loads: a CNI extension, not hidden (ours are temp files), no '/'. */
export function isConfName(name: string): boolean {
  return !name.startsWith('.') && !name.includes('/') && CNI_CONF_EXTENSIONS.some((e) => name.endsWith(e) && name.length > e.length);
}

/** A refusal: one line, exit code 2. */
export class InstallRefusal extends Error {}

/**
 * The node's primary CNI config among file names: the lexically first (byte order, as Go's
 * sort.Strings) with a CNI extension — what containerd's CRI plugin (go-cni loadFromConfDir)
 * and cri-o load; hidden files (ours are temp files) never count.
 */
export function primaryConfName(names: readonly string[]): string | undefined {
  const conf = names.filter(isConfName);
  return conf.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).at(0);
}

/** The indentation a JSON text uses (its first indented line), default two spaces. */
export function detectIndent(text: string): string {
  const m = /\n([ \t]+)\S/.exec(text);
  return m ? m[1]! : '  ';
}

/** The result of chaining: the new text, or undefined when afsteer is already in the list. */
export interface Chained {
  text?: string;
  /** The afsteer entry already present (left as it is). */
  already?: Record<string, unknown>;
}

/**
 * Appends `{"type":"afsteer", ...extra}` as the last plugin of a conflist's text, keeping every
 * other key and plugin (in order) and the file's indentation; refuses what afsteer cannot chain
 * into. name is for the messages.
 */
export function chainConflist(name: string, text: string, extra: Record<string, unknown>, allow: readonly string[] = []): Chained {
  if (!name.endsWith('.conflist')) {
    throw new InstallRefusal(
      `the primary CNI config ${name} is a single-plugin ${name.slice(name.lastIndexOf('.'))} file: afsteer chains into a .conflist ("plugins": [...]); convert it to one first`,
    );
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new InstallRefusal(`${name} is not valid JSON (${(err as Error).message}): fix it first; nothing was changed`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || !Array.isArray((doc as { plugins?: unknown }).plugins)) {
    throw new InstallRefusal(`${name} has no "plugins" array: not a conflist; nothing was changed`);
  }
  const list = doc as { plugins: unknown[] };
  const types = list.plugins.map((p) => (p && typeof p === 'object' ? (p as { type?: unknown }).type : undefined));
  const at = types.indexOf('afsteer');
  if (at >= 0) return { already: list.plugins[at] as Record<string, unknown> };
  const known = new Set<unknown>([...VETH_PLUGINS, ...SECONDARY_PLUGINS, ...allow]);
  if (!types.some((t) => known.has(t))) {
    throw new InstallRefusal(
      `${name} has no plugin afsteer chains after (${[...known].join(', ')}; it has ${types.map(String).join(', ') || 'none'}): name another one with --allow-plugin TYPE`,
    );
  }
  list.plugins.push({ type: 'afsteer', ...extra });
  return { text: JSON.stringify(list, null, detectIndent(text)) + (text.endsWith('\n') ? '\n' : '') };
}

/** The conflist text without afsteer's entry (for an uninstall after someone else edited the file). */
export function unchainConflist(text: string): string | undefined {
  let list: { plugins?: unknown[] };
  try {
    list = JSON.parse(text) as { plugins?: unknown[] };
  } catch {
    return undefined;
  }
  if (!Array.isArray(list.plugins)) return undefined;
  const kept = list.plugins.filter((p) => !(p && typeof p === 'object' && (p as { type?: unknown }).type === 'afsteer'));
  if (kept.length === list.plugins.length) return undefined;
  list.plugins = kept;
  return JSON.stringify(list, null, detectIndent(text)) + (text.endsWith('\n') ? '\n' : '');
}

/** A static peer as afsteerd's config has it. */
export interface PeerSpec {
  ipv4?: string;
  ipv6?: string;
  port?: number;
}

/**
 * Parses `--peer` text: `IPV4`, `IPV6`, `IPV4,IPV6` (either order), optionally with `:PORT` at
 * the end — after an IPv4, or after a bracketed IPv6 (`192.0.2.1,[2001:db8::1]:6171`).
 */
export function parsePeer(text: string): PeerSpec {
  let rest = text.trim();
  let port: number | undefined;
  const m = /^(.*(?:\]|\d+\.\d+\.\d+\.\d+)):(\d{1,5})$/.exec(rest);
  if (m) {
    port = Number(m[2]);
    if (port < 1 || port > 65535) throw new InstallRefusal(`--peer ${text}: port must be 1-65535`);
    rest = m[1]!;
  }
  const peer: PeerSpec = {};
  for (const raw of rest.split(',')) {
    const a = raw.trim().replace(/^\[(.*)\]$/, '$1');
    if (isIPv4(a) && !peer.ipv4) peer.ipv4 = a;
    else if (isIPv6(a) && !a.includes('%') && !peer.ipv6) peer.ipv6 = a;
    else
      throw new InstallRefusal(
        `--peer ${text}: ${JSON.stringify(a)} is not an IPv4 or IPv6 address (form: IPV4[,IPV6][:PORT], a port after an IPv6 needs [brackets])`,
      );
  }
  return { ...peer, ...(port !== undefined ? { port } : {}) };
}

/** Flags that shape afsteerd.json. */
export interface DaemonFlags {
  nodeName: string;
  peers: PeerSpec[];
  multicast: boolean;
  /** The node has an identity (--identity): afsteerd authenticates with it, not the cluster key. */
  identity?: boolean;
  port?: number;
}

/** afsteerd.json's content from flags (the file's paths are the node's own, not --root's). */
export function daemonConfigFrom(f: DaemonFlags): Record<string, unknown> {
  return {
    nodeName: f.nodeName,
    ...(f.identity ? { identity: '/etc/afsteer/identity' } : { keyFile: '/etc/afsteer/cluster.key' }),
    ...(f.port !== undefined ? { port: f.port } : {}),
    discovery: { ...(f.multicast ? { multicast: {} } : {}), static: f.peers },
  };
}
