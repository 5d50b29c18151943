/**
 * What per-flow marking leaves strict, shown with crafted packets (test/support/frames.ts, sent
 * from inside the pods through raw sockets by test/fixtures/raw-ip.py) between two simulated
 * nodes that track strictly (nf_conntrack_tcp_be_liberal=0) and drop `ct state invalid` in their
 * forward chains, as kube-proxy does. A pair (a0, b0) is steered with `afsteer steer set` (the
 * operator command, each node's writer in its own namespace); another two pods (a1, b1) are not.
 *
 * - TCP: after the pair crossed the tunnel and came back, a segment 1 GiB beyond a flow's window
 *   (the sequence number read off the flow's own last segment) is INVALID and dropped on the
 *   sending node for the pods that are not steered — their entries kept strict tracking — and
 *   accepted and delivered for the pair, whose entries are the ones marked liberal.
 * - SCTP (this kernel has no SCTP sockets; conntrack's SCTP tracker is built in): conntrack tracks
 *   verification tags, not windows. An association whose handshake conntrack saw keeps its entry
 *   through a tunnel period and its DATA passes when the pair is native again; one whose
 *   handshake crossed while the pair was steered has no entry, so its DATA is INVALID once the
 *   pair is native, until a HEARTBEAT (every 30 s by default) lets conntrack pick it up.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WireName } from '../../../src/bpf/maps-layout';
import { isLiberal } from '../../../src/net/conntrack';
import { ConntrackSocket, type CtEntry, IPPROTO_TCP } from '../../../src/net/ctnetlink';
import { inNetns } from '../../../src/net/netns';
import {
  IPPROTO,
  ipv4,
  ipv6,
  SCTP_CHUNK,
  type SctpChunk,
  sctpDataValue,
  sctpInitValue,
  sctpPacket,
  sctpParam,
  tcp,
} from '../../support/frames';
import { inNs } from '../../support/netns-tools';
import { nsExec, type SimNode, type SimPod, TwoNodes } from '../../support/two-nodes';
import { announceSkip, IS_ROOT, ROOT } from '../../support/world';

announceSkip('conntrack strictness with crafted packets');

/** Crafted packets in and out of a namespace. */
const RAW_IP_APP = join(ROOT, 'test', 'fixtures', 'raw-ip.py');
/** How far beyond a flow's window the crafted segment is (any window here is at most a few MB). */
const BEYOND = 0x4000_0000;

describe.skipIf(!IS_ROOT)('conntrack strictness with crafted packets', () => {
  let t: TwoNodes;
  let pa: SimPod, pb: SimPod, ua: SimPod, ub: SimPod;
  let port = 7300;

  const addr = (p: SimPod, f: 4 | 6) => (f === 4 ? p.ipv4 : p.ipv6);
  /** Sets the pair's wire on both nodes with the operator command: B first (its ACKs), then A (the data). */
  const steerPair = async (wire: WireName) => {
    await t.steerCmd(t.b, ['set', pb.ipv4, pa.ipv6, wire]);
    await t.steerCmd(t.a, ['set', pa.ipv4, pb.ipv6, wire]);
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  /** Sends crafted IP packets from inside pod, in order. */
  const sendRaw = async (pod: SimPod, packets: Buffer[]) => {
    const out = await inNs(pod.nsPath, ['python3', RAW_IP_APP, 'send'], 10_000, packets.map((p) => p.toString('hex')).join('\n') + '\n');
    expect(JSON.parse(out.split('\n')[0]!)).toEqual({ sent: packets.length });
  };
  /** Starts capturing pod's IP packets of proto between the ports; resolves once it listens, with what it captured later. */
  const sniff = async (
    pod: SimPod,
    o: { proto: number; sport: number; dport: number; direction: 'in' | 'out'; count: number; timeoutMs: number },
  ): Promise<{ packets: Promise<Buffer[]> }> => {
    const args = ['sniff', 'eth0', '--proto', String(o.proto), '--sport', String(o.sport), '--dport', String(o.dport)];
    args.push('--direction', o.direction, '--count', String(o.count), '--timeout-ms', String(o.timeoutMs));
    const child: ChildProcess = t.children.spawn('nsenter', [`--net=${pod.nsPath}`, 'python3', RAW_IP_APP, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sniffer did not start: ${err}`)), 5000);
      child.stderr!.on('data', (d) => {
        err += d;
        if (err.includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => reject(new Error(`sniffer exited ${code}: ${err}`)));
    });
    const packets = new Promise<Buffer[]>((resolve, reject) =>
      child.once('exit', (code) =>
        code === 0
          ? resolve((JSON.parse(out) as { packets: string[] }).packets.map((h) => Buffer.from(h, 'hex')))
          : reject(new Error(`sniffer exited ${code}: ${err}`)),
      ),
    );
    return { packets };
  };
  /** The L4 header's offset in an IP packet (IPv4 options allowed; IPv6 without extension headers). */
  const l4 = (ip: Buffer) => (ip[0]! >> 4 === 4 ? (ip[0]! & 0x0f) * 4 : 40);
  const tcpFields = (ip: Buffer) => {
    const o = l4(ip);
    return {
      sport: ip.readUInt16BE(o),
      dport: ip.readUInt16BE(o + 2),
      seq: ip.readUInt32BE(o + 4),
      ack: ip.readUInt32BE(o + 8),
      window: ip.readUInt16BE(o + 14),
    };
  };
  /** An IP packet of family f from one pod address to another around an L4 payload. */
  const ipPacket = (f: 4 | 6, src: string, dst: string, proto: number, payload: Buffer) =>
    f === 4 ? ipv4({ src, dst, proto, payload, df: true }) : ipv6({ src, dst, nh: proto, payload });
  const invalid = (n: SimNode) => t.invalidDrops(n, 'forward_filter');
  /** node's TCP entries whose original direction goes to dport. */
  const tcpEntries = (n: SimNode, dport: number): CtEntry[] =>
    inNetns(n.nsPath, () => {
      const s = ConntrackSocket.open(2000);
      try {
        return ([4, 6] as const).flatMap((f) => s.dump(f, IPPROTO_TCP)).filter((e) => e.dport === dport);
      } finally {
        s.close();
      }
    });

  beforeAll(async () => {
    t = new TwoNodes();
    try {
      await t.up();
      pa = await t.addPod(t.a, 'a0');
      pb = await t.addPod(t.b, 'b0');
      ua = await t.addPod(t.a, 'a1');
      ub = await t.addPod(t.b, 'b1');
      await t.steerCmd(t.a, ['remote', 'add', pb.ipv4, pb.ipv6]);
      await t.steerCmd(t.b, ['remote', 'add', pa.ipv4, pa.ipv6]);
      await steerPair('native');
      // The pods have no SCTP: their kernels answer each crafted SCTP packet with an ICMP error,
      // which is not what is measured here (and is itself INVALID when no entry matches).
      for (const p of [pa, pb]) {
        await nsExec(p.nsPath, ['nft', 'add', 'table', 'inet', 'no_sctp_errors']);
        await nsExec(p.nsPath, [
          'nft',
          'add',
          'chain',
          'inet',
          'no_sctp_errors',
          'out',
          '{ type filter hook output priority 0; policy accept; }',
        ]);
        await nsExec(p.nsPath, ['nft', 'add', 'rule', 'inet', 'no_sctp_errors', 'out', 'icmp', 'type', 'destination-unreachable', 'drop']);
        await nsExec(p.nsPath, ['nft', 'add', 'rule', 'inet', 'no_sctp_errors', 'out', 'icmpv6', 'type', 'parameter-problem', 'drop']);
      }
      // Neighbours resolved, so no crafted packet waits behind neighbour discovery.
      for (const [x, y] of [
        [pa, pb],
        [ua, ub],
      ] as const)
        for (const f of [4, 6] as const) await t.inPod(x, ['ping', `-${f}`, '-c', '1', '-W', '2', addr(y, f)]);
    } catch (err) {
      t?.cleanup();
      throw err;
    }
  }, 90_000);
  afterAll(() => t?.cleanup());

  it("a pod that is not steered keeps strict tracking: its segment beyond the window is INVALID and dropped; the steered pair's flows, marked liberal, pass the same segment", async () => {
    // Four paced streams: the pair's and the unsteered pods', over each family.
    const flows = [
      { name: 'pair IPv4', from: pa, to: pb, f: 4 as const, steered: true },
      { name: 'pair IPv6', from: pa, to: pb, f: 6 as const, steered: true },
      { name: 'unsteered IPv4', from: ua, to: ub, f: 4 as const, steered: false },
      { name: 'unsteered IPv6', from: ua, to: ub, f: 6 as const, steered: false },
    ].map((x) => ({ ...x, port: ++port }));
    const running = [];
    for (const x of flows) {
      const { done } = await t.server(x.to, addr(x.to, x.f), x.port);
      const client = t.client(x.from, addr(x.to, x.f), x.port, ['--duration-ms', '16000', '--chunk', '1000', '--interval-ms', '20']);
      client.catch(() => {});
      running.push({ done, client });
    }
    const drops0 = { a: await invalid(t.a), b: await invalid(t.b) };
    // The pair crosses the tunnel and back: each of its flows spends a while unseen by the nodes' conntrack.
    await sleep(500);
    await steerPair('ipv6');
    await sleep(1000);
    await steerPair('ipv4');
    await sleep(1000);
    await steerPair('native');
    await sleep(500);
    expect({ a: await invalid(t.a), b: await invalid(t.b) }, 'the switches themselves drop nothing').toEqual(drops0);

    const seen: Record<string, { dropsA: number; dropsB: number; delivered: boolean; liberal: boolean[] }> = {};
    for (const x of flows) {
      const ss = await nsExec(x.from.nsPath, ['ss', '-tnH', 'state', 'established', 'dport', `= :${x.port}`]);
      const sport = Number(/:(\d+)\s+\S+:\d+\s*$/m.exec(ss.trim())?.[1]);
      expect(sport, `${x.name}: the client's port`).toBeGreaterThan(0);
      // The flow's current sequence numbers, off its own next segment.
      const out = await sniff(x.from, { proto: IPPROTO.tcp, sport, dport: x.port, direction: 'out', count: 1, timeoutMs: 2000 });
      const [last] = await out.packets;
      expect(last, `${x.name}: a segment of the flow`).toBeDefined();
      const cur = tcpFields(last!);
      const seq = (cur.seq + BEYOND) >>> 0;
      const flow = { family: x.f, src: addr(x.from, x.f), dst: addr(x.to, x.f) };
      const seg = tcp(flow, { sport, dport: x.port, seq, ack: cur.ack, flags: 0x18, window: cur.window, data: Buffer.alloc(16, 0xee) });
      const before = { a: await invalid(t.a), b: await invalid(t.b) };
      const arrivals = await sniff(x.to, { proto: IPPROTO.tcp, sport, dport: x.port, direction: 'in', count: 100_000, timeoutMs: 1000 });
      await sendRaw(x.from, [ipPacket(x.f, flow.src, flow.dst, IPPROTO.tcp, seg)]);
      const got = await arrivals.packets;
      seen[x.name] = {
        dropsA: (await invalid(t.a)) - before.a,
        dropsB: (await invalid(t.b)) - before.b,
        delivered: got.some((p) => tcpFields(p).seq === seq),
        liberal: [t.a, t.b].flatMap((n) => tcpEntries(n, x.port).map(isLiberal)),
      };
    }
    console.log(`segment 1 GiB beyond the window: ${JSON.stringify(seen)}`);
    for (const x of flows) {
      const s = seen[x.name]!;
      if (x.steered) expect(s, x.name).toEqual({ dropsA: 0, dropsB: 0, delivered: true, liberal: [true, true] });
      // Dropped by node A's rule as INVALID: it never reaches node B or the pod.
      else expect(s, x.name).toEqual({ dropsA: 1, dropsB: 0, delivered: false, liberal: [false, false] });
    }
    // The streams themselves went on, intact.
    for (const r of running) {
      const [c, s] = [await r.client, await r.done];
      expect(s.sha256).toBe(c.sha256);
    }
    for (const n of [t.a, t.b])
      expect((await nsExec(n.nsPath, ['sysctl', '-n', 'net.netfilter.nf_conntrack_tcp_be_liberal'])).trim()).toBe('0');
  }, 60_000);

  for (const f of [4, 6] as const) {
    const wireAway: WireName = f === 4 ? 'ipv6' : 'ipv4';
    /** An SCTP association between the pair's pods over family f, its packets crafted. */
    const association = (sport: number, dport: number, tagA: number, tagB: number) => {
      const [src, dst] = [addr(pa, f), addr(pb, f)];
      const fromA = (vtag: number, chunks: SctpChunk[]) => ipPacket(f, src, dst, IPPROTO.sctp, sctpPacket(sport, dport, vtag, chunks));
      const fromB = (vtag: number, chunks: SctpChunk[]) => ipPacket(f, dst, src, IPPROTO.sctp, sctpPacket(dport, sport, vtag, chunks));
      const cookie = Buffer.alloc(16, 0xc0);
      let tsn = 1000;
      return {
        /** INIT, INIT ACK, COOKIE ECHO, COOKIE ACK, each from its own pod. */
        handshake: async () => {
          await sendRaw(pa, [fromA(0, [{ type: SCTP_CHUNK.init, value: sctpInitValue(tagA, 1000) }])]);
          await sendRaw(pb, [fromB(tagA, [{ type: SCTP_CHUNK.initAck, value: sctpInitValue(tagB, 5000, sctpParam(7, cookie)) }])]);
          await sendRaw(pa, [fromA(tagB, [{ type: SCTP_CHUNK.cookieEcho, value: cookie }])]);
          await sendRaw(pb, [fromB(tagA, [{ type: SCTP_CHUNK.cookieAck }])]);
        },
        /** One DATA chunk from a0; resolves whether b0 received it. */
        data: async () => {
          const arrivals = await sniff(pb, { proto: IPPROTO.sctp, sport, dport, direction: 'in', count: 1, timeoutMs: 1000 });
          await sendRaw(pa, [
            fromA(tagB, [{ type: SCTP_CHUNK.data, flags: 0x03, value: sctpDataValue(tsn++, Buffer.from('afsteer sctp')) }]),
          ]);
          return (await arrivals.packets).length === 1;
        },
        /** A HEARTBEAT from a0 and b0's HEARTBEAT ACK; resolves whether b0 received the heartbeat. */
        heartbeat: async () => {
          const info = sctpParam(1, Buffer.from('0123456789abcdef'));
          const arrivals = await sniff(pb, { proto: IPPROTO.sctp, sport, dport, direction: 'in', count: 1, timeoutMs: 1000 });
          await sendRaw(pa, [fromA(tagB, [{ type: SCTP_CHUNK.heartbeat, value: info }])]);
          const got = (await arrivals.packets).length === 1;
          await sendRaw(pb, [fromB(tagA, [{ type: SCTP_CHUNK.heartbeatAck, value: info }])]);
          return got;
        },
      };
    };
    const sctpEntries = async (n: SimNode, sport: number) =>
      (await nsExec(n.nsPath, ['conntrack', '-L', '-p', 'sctp', '-f', f === 4 ? 'ipv4' : 'ipv6', '--sport', String(sport)]).catch(() => ''))
        .trim()
        .split('\n')
        .filter(Boolean);

    it(`SCTP over IPv${f}: an association established while the pair is native keeps its entry through a tunnel period; its DATA passes when the pair is native again`, async () => {
      await steerPair('native');
      const sport = 5000 + f;
      const as = association(sport, 6000 + f, 0x1111_0000 + f, 0x2222_0000 + f);
      const drops0 = { a: await invalid(t.a), b: await invalid(t.b) };
      await as.handshake();
      for (const n of [t.a, t.b]) expect((await sctpEntries(n, sport)).join('\n'), `node ${n.name}`).toMatch(/ESTABLISHED/);
      expect(await as.data()).toBe(true);
      await steerPair(wireAway);
      expect(await as.data(), 'DATA through the tunnel').toBe(true);
      expect(await as.data(), 'DATA through the tunnel').toBe(true);
      await steerPair('native');
      expect(await as.data(), 'DATA native again').toBe(true);
      expect({ a: await invalid(t.a), b: await invalid(t.b) }).toEqual(drops0);
      for (const n of [t.a, t.b]) expect((await sctpEntries(n, sport)).join('\n'), `node ${n.name}`).toMatch(/ESTABLISHED/);
    }, 30_000);

    it(`SCTP over IPv${f}: an association begun while the pair is steered has no entry; its DATA is INVALID and dropped once the pair is native, until a HEARTBEAT lets conntrack pick it up`, async () => {
      await steerPair(wireAway);
      const sport = 5100 + f;
      const as = association(sport, 6100 + f, 0x3333_0000 + f, 0x4444_0000 + f);
      await as.handshake();
      expect(await as.data(), 'DATA through the tunnel').toBe(true);
      for (const n of [t.a, t.b]) expect(await sctpEntries(n, sport), `node ${n.name}: no entry`).toEqual([]);
      await steerPair('native');
      const drops0 = { a: await invalid(t.a), b: await invalid(t.b) };
      expect(await as.data(), 'DATA native, no entry').toBe(false);
      expect({ a: (await invalid(t.a)) - drops0.a, b: (await invalid(t.b)) - drops0.b }).toEqual({ a: 1, b: 0 });
      // A HEARTBEAT makes the entry (conntrack takes the verification tags from it and its ACK).
      expect(await as.heartbeat(), 'HEARTBEAT native').toBe(true);
      for (const n of [t.a, t.b]) expect((await sctpEntries(n, sport)).length, `node ${n.name}: an entry`).toBe(1);
      expect(await as.data(), 'DATA after the HEARTBEAT').toBe(true);
      expect({ a: (await invalid(t.a)) - drops0.a, b: (await invalid(t.b)) - drops0.b }).toEqual({ a: 1, b: 0 });
    }, 30_000);
  }
});
