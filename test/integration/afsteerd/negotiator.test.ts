/**
 * afsteerd between two simulated nodes: real daemons (dist/afsteerd, started from config files)
 * in each node's namespace exchanging real UDP across the routed middle namespace, pods through
 * the real chain via libcni, impairments per family in the middle (nftables drop / random loss).
 */

import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPairs, listRemotes } from '../../../src/bpf/steering';
import { decodeFrame, encodeFrame } from '../../../src/negotiator/protocol/frame';
import { readUdpPcap } from '../../support/pcap';
import {
  AFSTEERD_BIN as AFSTEERD,
  nsExec,
  type SimDaemon,
  type SimPod,
  type TwoNodes,
  twoNodesWithDaemons,
  waitFor,
} from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('afsteerd between two simulated nodes');

describe.skipIf(!IS_ROOT)('afsteerd between two simulated nodes', () => {
  let t: TwoNodes;
  let pa: SimPod;
  let pb: SimPod;
  let da: SimDaemon;
  let db: SimDaemon;
  let port = 6500;

  const wireOf = (pod: SimPod) => t.wireOf(pod);
  const pairOf = async (d: SimDaemon) => ((await t.status(d)).pairs as any[])[0];

  beforeAll(async () => {
    ({ t, pa, pb, da, db } = await twoNodesWithDaemons());
  }, 60_000);
  // The namespaces go, and with them every impairment and delay line.
  afterAll(() => t?.cleanup());

  it('discovery converges over static peers: each node sees the other on both families and registers its pod', async () => {
    await waitFor(
      async () => {
        const [sa, sb] = [await t.status(da), await t.status(db)];
        const up = (s: any) => s.peers.length === 1 && s.peers[0].families.IPv4?.state === 'up' && s.peers[0].families.IPv6?.state === 'up';
        return up(sa) && up(sb);
      },
      10_000,
      'both peers up on both families',
    );
    expect(listRemotes(t.a.pinDir)).toEqual([{ ipv4: pb.ipv4, ipv6: pb.ipv6 }]);
    expect(listRemotes(t.b.pinDir)).toEqual([{ ipv4: pa.ipv4, ipv6: pa.ipv6 }]);
    // Pairs are negotiated on demand: none before the pods talk.
    expect((await t.status(da)).pairs).toEqual([]);
    expect(listPairs(t.a.pinDir)).toEqual([]);
  });

  it('a pair appears on both nodes when the pods talk, native, with decapsulation confirmed by the peer', async () => {
    await t.inPod(pa, ['ping', '-c', '2', '-i', '0.1', '-W', '1', pb.ipv4]);
    await waitFor(async () => (await pairOf(da))?.peerDecap === true && (await pairOf(db))?.peerDecap === true, 5000, 'pair on both nodes');
    const [a, b] = [await pairOf(da), await pairOf(db)];
    expect(a).toMatchObject({ local: 'ctr-a0', remote: 'ctr-b0', peer: 'node-b', leader: true, wire: 'native', preferred: null });
    expect(b).toMatchObject({ local: 'ctr-b0', remote: 'ctr-a0', peer: 'node-a', leader: false, wire: 'native', preferred: null });
    expect(wireOf(pa)).toBe('native');
    expect(wireOf(pb)).toBe('native');
  });

  it('blackholing the family a live TCP stream is on moves both sending directions off it; the stream survives intact with strict conntrack (no INVALID drop); after the hold-down it goes back to native', async () => {
    const p = ++port;
    const drops0 = [await t.invalidDrops(t.a), await t.invalidDrops(t.b)];
    const { done } = await t.server(pb, pb.ipv4, p);
    const client = t.client(pa, pb.ipv4, p, ['--duration-ms', '5000', '--chunk', '16384', '--interval-ms', '5']);
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    await t.impair(4, 'blackhole');
    const switchedMs = await waitFor(() => wireOf(pa) === 'ipv6' && wireOf(pb) === 'ipv6', 3000, 'both nodes on IPv6');
    const [c, s] = [await client, await done];
    expect(s.sha256).toBe(c.sha256);
    expect(s.bytes).toBe(c.bytes);
    console.log(`blackhole → both maps on IPv6 in ${switchedMs} ms (polled every 20 ms); longest receive stall ${s.maxGapMs} ms`);
    expect(switchedMs).toBeLessThan(1000);
    expect(s.maxGapMs as number).toBeLessThan(1000);
    const sw = (await t.status(da)).switches as any[];
    expect(sw.at(-1)).toMatchObject({ pair: 'ctr-a0|ctr-b0', from: 'native', to: 'ipv6' });
    expect(String(sw.at(-1).reason)).toMatch(/blackhole on IPv4/);
    expect(da.logs.some((l) => l.msg === 'switch' && l.to === 'ipv6' && /blackhole/.test(String(l.reason)))).toBe(true);
    // The nodes track TCP strictly (be_liberal 0, never written by afsteer) and drop INVALID, as
    // kube-proxy does: the pair's own entries were marked liberal at each switch, nothing was dropped.
    for (const [i, n] of [t.a, t.b].entries()) {
      expect((await nsExec(n.nsPath, ['sysctl', '-n', 'net.netfilter.nf_conntrack_tcp_be_liberal'])).trim()).toBe('0');
      expect((await t.invalidDrops(n)) - drops0[i]!, `INVALID drops on node ${n.name}`).toBe(0);
    }

    // Restore: held down, then native again (lowest-latency: neither family wins by the margin).
    await t.impair(4, null);
    const restoredAt = Date.now();
    await new Promise((r) => setTimeout(r, 1500));
    expect(wireOf(pa)).toBe('ipv6');
    // Keep the pair active while waiting.
    const keep = t.inPod(pa, ['ping', '-c', '60', '-i', '0.1', '-W', '1', pb.ipv4]).catch(() => '');
    await waitFor(() => wireOf(pa) === 'native' && wireOf(pb) === 'native', 10_000, 'back to native after the hold-down');
    expect(Date.now() - restoredAt).toBeGreaterThanOrEqual(2500);
    void keep;
    void t0;
  }, 30_000);

  it('SIGKILL of afsteerd during a steered stream: the stream continues; the restarted daemon adopts the pair without a flap', async () => {
    await t.impair(4, 'blackhole');
    const p = ++port;
    const { done } = await t.server(pb, pb.ipv4, p);
    const client = t.client(pa, pb.ipv4, p, ['--duration-ms', '6000', '--chunk', '16384', '--interval-ms', '5']);
    await waitFor(() => wireOf(pa) === 'ipv6' && wireOf(pb) === 'ipv6', 3000, 'steered to IPv6');
    da.child.kill('SIGKILL');
    await da.exited;
    // Watch A's map every 20 ms from the kill until the new daemon has settled.
    const seen = new Set<string | undefined>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        seen.add(wireOf(pa));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await new Promise((r) => setTimeout(r, 1000));
    da = await t.startDaemon(t.a);
    await waitFor(async () => (await pairOf(da))?.adopted === false, 8000, 'pair resumed by the new daemon');
    await new Promise((r) => setTimeout(r, 1500));
    watching = false;
    await watch;
    expect([...seen]).toEqual(['ipv6']);
    expect((await t.status(da)).switches).toEqual([]);
    expect(da.logs.some((l) => l.msg === 'pair adopted')).toBe(true);
    const [c, s] = [await client, await done];
    expect(s.sha256).toBe(c.sha256);
    await t.impair(4, null);
  }, 40_000);

  it('SIGTERM exits 0 and leaves the steering in place', async () => {
    await t.impair(4, 'blackhole');
    await t.inPod(pa, ['ping', '-c', '3', '-i', '0.1', '-W', '1', pb.ipv6]);
    await waitFor(() => wireOf(pa) === 'ipv6', 3000, 'steered');
    da.child.kill('SIGTERM');
    expect(await da.exited).toBe(0);
    expect(wireOf(pa)).toBe('ipv6');
    da = await t.startDaemon(t.a);
    await t.impair(4, null);
  }, 30_000);

  it('a node whose daemon stays down past the peer timeout: its pinned steering still reaches the peer, which keeps decapsulating its pods for the retention time', async () => {
    // B keeps A's pods for 60 s after A goes silent (the helper's default is 1 s).
    db.child.kill('SIGTERM');
    await db.exited;
    db = await t.startDaemon(t.b, {
      timers: {
        announceIntervalMs: 300,
        peerTimeoutMs: 3000,
        remoteRetentionMs: 60_000,
        evalIntervalMs: 100,
        negotiateIntervalMs: 500,
        rescanMs: 1000,
      },
    });
    await t.impair(4, 'blackhole');
    try {
      await t.inPod(pa, ['ping', '-c', '3', '-i', '0.2', '-W', '1', pb.ipv6]);
      await waitFor(() => wireOf(pa) === 'ipv6' && wireOf(pb) === 'ipv6', 8000, 'steered to IPv6');
      da.child.kill('SIGKILL');
      await da.exited;
      await waitFor(async () => (await t.status(db)).peers.length === 0, 8000, 'B ages A out');
      expect(wireOf(pb)).toBeUndefined(); // B's own direction went native (no peer: no steering)
      expect(wireOf(pa)).toBe('ipv6'); // A's pinned steering is left as it was
      expect(listRemotes(t.b.pinDir)).toEqual([{ ipv4: pa.ipv4, ipv6: pa.ipv6 }]);
      // A's IPv4 datagrams still travel as IPv4-in-IPv6 and B still delivers them.
      const { done } = await t.server(pb, pb.ipv4, 6590, false, 'udp-server', ['--count', '20']);
      await t.client(pa, pb.ipv4, 6590, ['--count', '20', '--size', '200'], 'udp-client').catch(() => ({}));
      const got = await Promise.race([
        done,
        new Promise<Record<string, unknown>>((r) => setTimeout(() => r({ received: 'timeout' }), 5000)),
      ]);
      expect(got.received).toBe(20);
    } finally {
      await t.impair(4, null);
      if (da.child.exitCode !== null || da.child.signalCode !== null) da = await t.startDaemon(t.a);
      db.child.kill('SIGTERM');
      await db.exited;
      db = await t.startDaemon(t.b);
      await waitFor(async () => (await t.status(da)).peers.length === 1 && (await t.status(db)).peers.length === 1, 8000, 'peers again');
    }
  }, 60_000);

  it('a node with a wrong key is ignored and counted', async () => {
    const badKey = join(t.dir, 'wrong.key');
    writeFileSync(badKey, randomBytes(32), { mode: 0o600 });
    const before = (await t.status(da)).counters.drops.mac ?? 0;
    const rogue = await t.startDaemon(
      t.b,
      {
        nodeName: 'rogue',
        // Not 6171, node B's echo port: a rogue bound there would take B's echo probes from A (A
        // would see them lost and may call a path blackholed in the next test).
        port: 6190,
        controlSocket: join(t.dir, 'rogue.sock'),
        stateDir: join(t.dir, 'rogue-state'),
        pinDir: `${t.b.pinDir}-rogue`,
        discovery: { static: [{ ...t.nodeAddresses(t.a), port: 6170 }] },
      },
      badKey,
    );
    try {
      await waitFor(async () => ((await t.status(da)).counters.drops.mac ?? 0) >= before + 4, 5000, 'rogue datagrams dropped');
      const s = await t.status(da);
      expect(s.peers.map((p: any) => p.node)).toEqual(['node-b']);
      expect((await t.status(rogue)).peers).toEqual([]);
    } finally {
      rogue.child.kill('SIGKILL');
      await rogue.exited;
      rmSync(`${t.b.pinDir}-rogue`, { recursive: true, force: true });
    }
  }, 20_000);

  it('replayed and forged negotiation datagrams change nothing', async () => {
    // Capture real negotiation traffic from A to B while the pair is steered.
    await t.impair(4, 'blackhole');
    await t.inPod(pa, ['ping', '-c', '3', '-i', '0.1', '-W', '1', pb.ipv6]);
    await waitFor(() => wireOf(pa) === 'ipv6' && wireOf(pb) === 'ipv6', 3000, 'steered');
    const key = readFileSync(t.keyFile);
    // Only the big frames (announcements, negotiation; probes are ~100 bytes, ~200 a second).
    const pcap = await t.capture(
      t.b,
      6170,
      200,
      4000,
      async () => {
        await t.impair(4, null);
        await new Promise((r) => setTimeout(r, 2000));
      },
      200,
    );
    const frames = readUdpPcap(pcap)
      .map((c) => c.payload)
      .filter((b) => {
        const f = decodeFrame(key, b);
        // The capture holds both directions of the link: keep A's messages to B.
        return typeof f !== 'string' && f.type === 'negotiate' && f.node === 'node-a';
      });
    expect(frames.length).toBeGreaterThan(0);
    const before = await t.status(db);
    // Replays of every captured negotiation; forgeries: the same with a byte of the JSON changed
    // (e.g. the preferred family), and well-formed frames under another key.
    const forged = frames.map((f) => {
      const g = Buffer.from(f);
      g[g.length - 40]! ^= 0x01;
      return g;
    });
    const other = randomBytes(32);
    const wrongKey = frames.map((f) => {
      const d = decodeFrame(key, f) as Exclude<ReturnType<typeof decodeFrame>, string>;
      return encodeFrame(other, { ...d, seq: d.seq + 1000n, payload: Buffer.from(d.payload.toString().replace(/"IPv6"/g, '"IPv4"')) });
    });
    await t.sendUdp(`/run/netns/${t.mid}`, '192.168.2.2', 6170, [...frames, ...forged, ...wrongKey]);
    await new Promise((r) => setTimeout(r, 300));
    const after = await t.status(db);
    console.log(
      `replay test: ${frames.length} captured; drops before ${JSON.stringify(before.counters.drops)} after ${JSON.stringify(after.counters.drops)}`,
    );
    expect(after.counters.drops.replay - (before.counters.drops.replay ?? 0)).toBeGreaterThanOrEqual(frames.length);
    expect(after.counters.drops.mac - (before.counters.drops.mac ?? 0)).toBeGreaterThanOrEqual(forged.length + wrongKey.length);
    expect(after.pairs.map((p: any) => [p.wire, p.round])).toEqual(before.pairs.map((p: any) => [p.wire, p.round]));
    expect(after.switches).toEqual(before.switches);
    expect(after.switchesTotal).toBe(before.switchesTotal);
  }, 30_000);

  it('100,000 random and mutated datagrams: the daemon keeps running, drops and counts them all, no state changes', async () => {
    const key = readFileSync(t.keyFile);
    const valid = encodeFrame(key, { type: 'negotiate', epoch: 1n, seq: 1n, node: 'node-b', payload: Buffer.from('{"pairs":[]}') });
    const rnd = (n: number) => Math.floor(Math.random() * n);
    const dgrams: Buffer[] = [];
    for (let i = 0; i < 100_000; i++) {
      if (i % 2) {
        dgrams.push(randomBytes(1 + rnd(1400)));
      } else {
        const g = Buffer.from(valid);
        for (let k = 0; k <= rnd(4); k++) {
          const at = rnd(g.length);
          g[at] = g[at]! ^ (1 << rnd(8));
        }
        dgrams.push(i % 7 === 0 ? Buffer.concat([g, randomBytes(rnd(1500))]) : i % 5 === 0 ? g.subarray(0, 1 + rnd(g.length - 1)) : g);
      }
    }
    const before = await t.status(da);
    const sent = await t.sendUdp(`/run/netns/${t.mid}`, '192.168.1.2', 6170, dgrams, 50);
    expect(sent).toBe(100_000);
    await new Promise((r) => setTimeout(r, 500));
    const after = await t.status(da);
    expect(da.child.exitCode).toBeNull();
    const drops = (s: any) => Object.values(s.counters.drops as Record<string, number>).reduce((a, b) => a + b, 0);
    // Some may be lost in the socket buffer; none may be accepted.
    expect(drops(after) - drops(before)).toBeGreaterThan(90_000);
    expect(after.peers.map((p: any) => p.node)).toEqual(['node-b']);
    expect(after.pairs.map((p: any) => [p.local, p.remote])).toEqual(before.pairs.map((p: any) => [p.local, p.remote]));
    console.log(`fuzz: ${sent} sent, drops by reason ${JSON.stringify(after.counters.drops)}`);
  }, 60_000);

  it('the control socket answers garbage, unknown ops and oversized requests with an error line; the daemon carries on', async () => {
    const { createConnection } = await import('node:net');
    const ask = (payload: string) =>
      new Promise<string>((resolve) => {
        const c = createConnection(da.socket);
        let b = '';
        c.on('data', (d) => (b += d));
        c.on('close', () => resolve(b));
        c.on('error', () => resolve(b));
        c.write(payload, () => setTimeout(() => c.end(), 200));
      });
    expect(await ask('not json\n')).toMatch(/"ok":false/);
    expect(await ask('[1,2]\n')).toMatch(/expected a JSON object/);
    expect(await ask('{"op":"constructor"}\n')).toMatch(/unknown op/);
    expect(await ask('{"op":"__proto__"}\n')).toMatch(/unknown op/);
    expect(await ask('x'.repeat(100_000))).toMatch(/request too large/);
    expect((await t.status(da)).node).toBe('node-a');
  });

  it('a controlSocket path held by a regular file is refused at start-up (exit 1), the file untouched', async () => {
    const f = join(t.dir, 'not-a-socket');
    writeFileSync(f, 'keep');
    const cfg = join(t.dir, 'bad-socket.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        nodeName: 'x',
        keyFile: t.keyFile,
        pinDir: t.a.pinDir,
        stateDir: t.a.stateDir,
        controlSocket: f,
        addresses: t.nodeAddresses(t.a),
        port: 6190,
      }),
    );
    const { execFile } = await import('node:child_process');
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = execFile('nsenter', [`--net=${t.a.nsPath}`, AFSTEERD, 'run', '--config', cfg], (err, _o, stderr) =>
        resolve({ code: err ? (err as any).code : 0, stderr }),
      );
      void c;
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exists and is not a socket/);
    expect(readFileSync(f, 'utf8')).toBe('keep');
  });

  it('a pod whose node went silent reverts to native and is unregistered', async () => {
    await t.inPod(pa, ['ping', '-c', '2', '-i', '0.1', '-W', '1', pb.ipv4]);
    await waitFor(() => wireOf(pa) !== undefined, 3000, 'pair routed');
    db.child.kill('SIGKILL');
    await db.exited;
    await waitFor(() => wireOf(pa) === undefined && listRemotes(t.a.pinDir).length === 0, 8000, 'A forgets B');
    expect(da.logs.some((l) => l.msg === 'peer aged out' && l.peer === 'node-b')).toBe(true);
    expect((await t.status(da)).peers).toEqual([]);
  }, 20_000);
});
