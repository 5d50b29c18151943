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
const RTM_NEWNSID = 88;
const RTM_GETNSID = 90;
const NETNSA_NSID = 1;
const NETNSA_FD = 3;
const TCA_BPF_CLASSID = 3;
const TCA_BPF_FD = 6;
const TCA_BPF_NAME = 7;
const TCA_BPF_FLAGS = 8;
const TCA_BPF_ID = 11;
const TCA_BPF_FLAG_ACT_DIRECT = 1;
/** htons(ETH_P_ALL), the filter protocol in tcm_info's low 16 bits. */
const ETH_P_ALL_BE = 0x0300;

function u32le(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0, 0);
  return b;
}

function nlattr(type: number, value: Buffer): Buffer {
  const len = 4 + value.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  value.copy(b, 4);
  return b;
}

function nlattrU32(type: number, v: number): Buffer {
  return nlattr(type, u32le(v));
}

/** Calls fn for each attribute of a raw attribute stream. */
function forEachAttr(buf: Buffer, fn: (type: number, value: Buffer) => void): void {
  for (let off = 0; off + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    fn(buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len));
    off += (len + 3) & ~3;
  }
}

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
  /** IFLA_LINK_NETNSID: the namespace of the veth peer (or macvlan/ipvlan parent), as this namespace numbers it, when it is another one. */
  linkNetnsid?: number;
  up: boolean;
}

/** What `tc filter show` reports of a bpf filter: its program and classid. */
export interface BpfFilterInfo {
  handle: number;
  priority: number;
  progId?: number;
  classid: number;
  directAction: boolean;
}

/** A route through a link (main table), as far as afsteer reads it. */
export interface LinkRoute {
  family: 4 | 6;
  dst: Cidr;
  gateway?: string;
  /** RTAX_MTU, when the route carries one. */
  mtu?: number;
  /** The raw route, to write it back with another MTU. */
  raw: { data: Record<string, unknown>; attrs: Record<string, unknown> };
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

  /**
   * The id this namespace gives the network namespace open at fd (RTM_GETNSID), or undefined when
   * it has given it none (no link of this namespace points there).
   */
  async nsidOf(fd: number): Promise<number | undefined> {
    const req = Buffer.alloc(12);
    req.writeUInt16LE(8, 4); // nlattr len
    req.writeUInt16LE(NETNSA_FD, 6);
    req.writeUInt32LE(fd, 8);
    const [msgs] = await wrap('get nsid', this.sock.socket.request(RTM_GETNSID, [req], this.opts()));
    for (const m of msgs as { type: number; data: Buffer }[]) {
      if (m.type !== RTM_NEWNSID) continue;
      for (let off = 4; off + 4 <= m.data.length; ) {
        const len = m.data.readUInt16LE(off);
        if (len < 4) break;
        if ((m.data.readUInt16LE(off + 2) & 0x3fff) === NETNSA_NSID && len >= 8) {
          const id = m.data.readInt32LE(off + 4);
          return id < 0 ? undefined : id;
        }
        off += (len + 3) & ~3;
      }
    }
    return undefined;
  }

  /**
   * Adds (or replaces) a direct-action bpf filter running progFd at a clsact parent, with a
   * classid (cls_bpf hands its minor to the program in skb->tc_classid): what libbpf's
   * bpf_tc_attach cannot set.
   */
  async replaceBpfFilter(
    index: number,
    parent: number,
    f: { handle: number; priority: number; progFd: number; name: string; classid: number },
  ): Promise<void> {
    const name = Buffer.from(`${f.name}\0`);
    const attrs = Buffer.concat([
      nlattrU32(TCA_BPF_FD, f.progFd),
      nlattr(TCA_BPF_NAME, name),
      nlattrU32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT),
      nlattrU32(TCA_BPF_CLASSID, f.classid),
    ]);
    await wrap(
      `attach bpf filter ${f.name} on link #${index}`,
      this.sock.newTrafficFilter(
        { ifindex: index, handle: f.handle, parent, info: ((f.priority << 16) | ETH_P_ALL_BE) >>> 0 },
        { kind: 'bpf', options: attrs },
        { ...this.opts(), flags: 0x400 | 0x100 } as never, // NLM_F_CREATE | NLM_F_REPLACE
      ),
    );
  }

  /** The bpf filter with handle at a clsact parent of a link, or undefined when there is none. */
  async bpfFilter(index: number, parent: number, handle: number): Promise<BpfFilterInfo | undefined> {
    let msgs: Awaited<ReturnType<RtNetlinkSocket['getTrafficFilters']>>;
    try {
      msgs = await this.sock.getTrafficFilters({ ifindex: index, parent }, {}, this.opts());
    } catch (err) {
      const e = errnoOf(err);
      if (e === 19 || e === 22 || e === 2) return undefined;
      throw new Error(`netlink: list tc filters on link #${index}`, { cause: err });
    }
    for (const m of msgs) {
      if (m.data.ifindex !== index || m.data.handle !== handle || m.attrs.kind !== 'bpf' || !m.attrs.options) continue;
      const info: BpfFilterInfo = { handle, priority: (m.data.info ?? 0) >>> 16, classid: 0, directAction: false };
      forEachAttr(m.attrs.options, (type, v) => {
        if (type === TCA_BPF_ID && v.length >= 4) info.progId = v.readUInt32LE(0);
        else if (type === TCA_BPF_CLASSID && v.length >= 4) info.classid = v.readUInt32LE(0);
        else if (type === TCA_BPF_FLAGS && v.length >= 4) info.directAction = (v.readUInt32LE(0) & TCA_BPF_FLAG_ACT_DIRECT) !== 0;
      });
      return info;
    }
    return undefined;
  }

  /** The main table's unicast routes out of link index (both families, or one). */
  async routesVia(index: number, family?: 4 | 6): Promise<LinkRoute[]> {
    const msgs = await wrap('list routes', this.sock.getRoutes({}, {}, this.opts()));
    const out: LinkRoute[] = [];
    for (const m of msgs) {
      const fam = m.data.family === AF_INET ? 4 : m.data.family === AF_INET6 ? 6 : undefined;
      if (!fam || (family && fam !== family) || m.attrs.oif !== index) continue;
      if ((m.attrs.table ?? m.data.table) !== RT_TABLE_MAIN) continue;
      const type = m.data.type;
      if (type !== undefined && type !== 'UNICAST' && type !== 1) continue;
      const dst = m.attrs.dst ? bytesToAddress(m.attrs.dst) : fam === 4 ? '0.0.0.0' : '::';
      const mtuBuf = m.attrs.metrics?.mtu;
      out.push({
        family: fam,
        dst: { family: fam, address: dst, prefix: m.data.dstLen ?? 0 },
        ...(m.attrs.gateway ? { gateway: bytesToAddress(m.attrs.gateway) } : {}),
        ...(mtuBuf && mtuBuf.length >= 4 ? { mtu: mtuBuf.readUInt32LE(0) } : {}),
        raw: { data: m.data as Record<string, unknown>, attrs: m.attrs as Record<string, unknown> },
      });
    }
    return out;
  }

  /** Writes a route read by routesVia back with an MTU metric (undefined: without one), replacing it. */
  async setRouteMtu(r: LinkRoute, mtu: number | undefined): Promise<void> {
    const { metrics, cacheinfo, ...attrs } = r.raw.attrs as { metrics?: Record<string, unknown>; cacheinfo?: unknown };
    void cacheinfo;
    const rest = { ...(metrics ?? {}) };
    delete rest.mtu;
    const next = mtu === undefined ? rest : { ...rest, mtu: u32le(mtu) };
    await wrap(
      `set mtu ${mtu ?? '-'} on route ${r.dst.address}/${r.dst.prefix}`,
      this.sock.newRoute(
        r.raw.data as never,
        { ...attrs, ...(Object.keys(next).length ? { metrics: next } : {}) } as never,
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
  if (typeof m.attrs.linkNetnsid === 'number' && m.attrs.linkNetnsid >= 0) info.linkNetnsid = m.attrs.linkNetnsid;
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
