/** rtnetlink operations afsteer needs (links, addresses, routes, tc filters) over node-netlink, each with a timeout. */
// rtnetlink alone: the package's index also loads nl80211, genl and wireguard (~300 KB of JS to evaluate on every ADD).

import { constants as osConstants } from 'node:os';
import { createRtNetlink, type RtNetlinkSocket } from 'netlink/dist/rt/rt';
import { addressBytes, bytesToAddress, type Cidr, canonical } from './ip';
import { inNetns } from './netns';

/** Timeout for every netlink request, in ms. */
export const NETLINK_TIMEOUT_MS = 5000;
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;

/** What afsteer reads of a link. */
export interface LinkInfo {
  index: number;
  name: string;
  mtu: number;
  /** IFLA_LINK: for a veth, the peer's ifindex (in the peer's namespace). */
  peerIndex?: number;
  kind?: string;
  /** MAC address, lower-case colon form. */
  mac?: string;
  /** ifindex of the bridge (or other master) the link is enslaved to. */
  master?: number;
  up: boolean;
}

/** An address configured on a link. */
export interface LinkAddress extends Cidr {
  index: number;
}

/** A rtnetlink socket bound to one network namespace. */
export class Rtnl {
  private constructor(private readonly sock: RtNetlinkSocket) {}

  /** A socket in the current (host) namespace. */
  static host(): Rtnl {
    return new Rtnl(createRtNetlink());
  }

  /** A socket in the namespace at nsPath (created inside it, used from here on). */
  static inNamespace(nsPath: string): Rtnl {
    return inNetns(nsPath, () => new Rtnl(createRtNetlink()));
  }

  /** Closes the socket. */
  close(): void {
    this.sock.socket.close();
  }

  private opts() {
    return { timeout: NETLINK_TIMEOUT_MS };
  }

  /** The link called name, or undefined when there is none. */
  async linkByName(name: string): Promise<LinkInfo | undefined> {
    try {
      const [m] = await this.sock.getLink({}, { ifname: name }, this.opts());
      return m && toLinkInfo(m);
    } catch (err) {
      if (isNoDevice(err)) return undefined;
      throw new Error(`netlink: get link ${name}`, { cause: err });
    }
  }

  /** The link with ifindex index, or undefined when there is none. */
  async linkByIndex(index: number): Promise<LinkInfo | undefined> {
    try {
      const [m] = await this.sock.getLink({ index }, {}, this.opts());
      return m && toLinkInfo(m);
    } catch (err) {
      if (isNoDevice(err)) return undefined;
      throw new Error(`netlink: get link #${index}`, { cause: err });
    }
  }

  /** Sets a link's MTU. */
  async setMtu(index: number, mtu: number): Promise<void> {
    await wrap(`set mtu ${mtu} on link #${index}`, this.sock.setLink({ index }, { mtu }, this.opts()));
  }

  /** Brings a link up. */
  async setUp(index: number): Promise<void> {
    await wrap(`set link #${index} up`, this.sock.setLink({ index, flags: { up: true }, change: { up: true } }, {}, this.opts()));
  }

  /** Addresses on a link (of one family, or both). */
  async addresses(index: number, family?: 4 | 6): Promise<LinkAddress[]> {
    const msgs = await wrap('list addresses', this.sock.getAddresses({}, {}, this.opts()));
    const out: LinkAddress[] = [];
    for (const m of msgs) {
      if (m.data.index !== index) continue;
      const fam = m.data.family === AF_INET ? 4 : m.data.family === AF_INET6 ? 6 : undefined;
      if (!fam || (family && fam !== family)) continue;
      const raw = m.attrs.local ?? m.attrs.address;
      if (!raw) continue;
      out.push({ index, family: fam, address: bytesToAddress(raw), prefix: m.data.prefixlen ?? 0 });
    }
    return out;
  }

  /** Index of the link holding address (any state: a link without carrier yet is found too), or undefined. */
  async linkOfAddress(address: string): Promise<number | undefined> {
    const want = canonical(address);
    const msgs = await wrap('list addresses', this.sock.getAddresses({}, {}, this.opts()));
    for (const m of msgs) {
      const raw = m.attrs.local ?? m.attrs.address;
      if (raw && canonical(bytesToAddress(raw)) === want) return m.data.index;
    }
    return undefined;
  }

  /** Adds an address; nodad skips duplicate address detection (IPv6). Existing is not an error. */
  async addAddress(index: number, cidr: Cidr, nodad: boolean): Promise<void> {
    const bytes = addressBytes(cidr.address);
    const flags = nodad && cidr.family === 6 ? { nodad: true as const } : undefined;
    try {
      await this.sock.newAddress(
        { family: cidr.family === 4 ? AF_INET : AF_INET6, prefixlen: cidr.prefix, index, ...(flags ? { flags } : {}) },
        { local: bytes, address: bytes, ...(flags ? { flags } : {}) },
        { ...this.opts(), flags: 0x400 | 0x200 } as never, // NLM_F_CREATE | NLM_F_EXCL
      );
    } catch (err) {
      if (errnoOf(err) === 17) return; // EEXIST
      throw new Error(`netlink: add address ${cidr.address}/${cidr.prefix} on link #${index}`, { cause: err });
    }
  }

  /** Removes an address; an address already gone is not an error. */
  async delAddress(index: number, cidr: Cidr): Promise<void> {
    const bytes = addressBytes(cidr.address);
    try {
      await this.sock.delAddress(
        { family: cidr.family === 4 ? AF_INET : AF_INET6, prefixlen: cidr.prefix, index },
        { local: bytes, address: bytes },
        this.opts(),
      );
    } catch (err) {
      const e = errnoOf(err);
      if (e === 99 || e === 19 || e === 2) return; // EADDRNOTAVAIL, ENODEV, ENOENT
      throw new Error(`netlink: delete address ${cidr.address}/${cidr.prefix} on link #${index}`, { cause: err });
    }
  }

  /** Adds (or replaces) a route to dst via gw (or on-link) out of link index. */
  async replaceRoute(index: number, dst: Cidr, gw?: string): Promise<void> {
    const family = dst.family === 4 ? AF_INET : AF_INET6;
    await wrap(
      `add route ${dst.address}/${dst.prefix}${gw ? ` via ${gw}` : ''}`,
      this.sock.newRoute(
        { family, dstLen: dst.prefix, table: RT_TABLE_MAIN, protocol: 'BOOT', scope: gw ? 'UNIVERSE' : 'LINK', type: 'UNICAST' },
        { dst: addressBytes(dst.address), oif: index, ...(gw ? { gateway: addressBytes(gw) } : {}) },
        { ...this.opts(), flags: 0x400 | 0x100 } as never, // NLM_F_CREATE | NLM_F_REPLACE
      ),
    );
  }

  /** Number of tc filters on a link under a clsact parent (ingress 0xFFFFFFF2, egress 0xFFFFFFF3). */
  async tcFilterCount(index: number, parent: number): Promise<number> {
    try {
      const msgs = await this.sock.getTrafficFilters({ ifindex: index, parent }, {}, this.opts());
      return msgs.filter((m) => m.data.ifindex === index).length;
    } catch (err) {
      const e = errnoOf(err);
      if (e === 19 || e === 22 || e === 2) return 0;
      throw new Error(`netlink: list tc filters on link #${index}`, { cause: err });
    }
  }
}

type LinkMsg = Awaited<ReturnType<RtNetlinkSocket['getLinks']>>[number];

function toLinkInfo(m: LinkMsg): LinkInfo {
  const linkAttr = m.attrs.link;
  const info: LinkInfo = {
    index: m.data.index ?? 0,
    name: m.attrs.ifname ?? '',
    mtu: m.attrs.mtu ?? 0,
    up: Boolean(m.data.flags?.up),
  };
  if (m.attrs.master) info.master = m.attrs.master;
  const mac = m.attrs.address;
  if (mac && mac.length === 6) info.mac = Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
  if (linkAttr && linkAttr.length >= 4) info.peerIndex = linkAttr.readUInt32LE(0);
  const kind = linkKind(m.attrs.linkinfo);
  if (kind) info.kind = kind;
  return info;
}

/** IFLA_INFO_KIND out of a raw IFLA_LINKINFO attribute stream. */
function linkKind(linkinfo: Buffer | undefined): string | undefined {
  if (!linkinfo) return undefined;
  let off = 0;
  while (off + 4 <= linkinfo.length) {
    const len = linkinfo.readUInt16LE(off);
    const type = linkinfo.readUInt16LE(off + 2) & 0x3fff;
    if (len < 4 || off + len > linkinfo.length) break;
    if (type === 1)
      return linkinfo
        .subarray(off + 4, off + len)
        .toString()
        .replace(/\0+$/, '');
    off += (len + 3) & ~3;
  }
  return undefined;
}

/** The errno carried by a node-netlink error, if any. */
export function errnoOf(err: unknown): number | undefined {
  const e = err as { errno?: number; message?: string } | undefined;
  if (typeof e?.errno === 'number') return Math.abs(e.errno);
  // node-netlink reports kernel errors as "Request rejected: ENAME" (or a number).
  const m = /Request rejected: (\w+)/.exec(e?.message ?? '');
  if (!m) return undefined;
  const name = m[1]!;
  if (/^-?\d+$/.test(name)) return Math.abs(Number(name));
  return (osConstants.errno as Record<string, number>)[name];
}

function isNoDevice(err: unknown): boolean {
  const e = errnoOf(err);
  return e === 19 || e === 2;
}

async function wrap<T>(what: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw new Error(`netlink: ${what}`, { cause: err });
  }
}
