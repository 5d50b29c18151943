/**
 * The operator side over real daemons in one process (memory-cluster: real Daemon, real writer on
 * in-memory maps, in-memory network, manual clock): Prometheus metrics from a real prom-client
 * registry, the 15-minute history, state-change and drop-summary log lines, operator pins agreed
 * by both ends and left while blackholed, and the page's server.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { History } from '../../../src/negotiator/ops/history';
import { serveWeb } from '../../../src/negotiator/ops/http-server';
import { createMetrics, METRIC_NAMES } from '../../../src/negotiator/ops/metrics';
import { Observer } from '../../../src/negotiator/ops/observer';
import { configureLog, setLogBackend } from '../../../src/util/log';
import { MemoryCluster, type MemoryNode } from '../../support/memory-cluster';

beforeAll(() => configureLog({ level: 'error' }));

let cluster: MemoryCluster | undefined;
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  cluster?.stop();
  cluster = undefined;
  setLogBackend(undefined);
  for (const c of cleanups.splice(0)) await c();
});

/** The value of one series in exposition text (undefined when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

async function twoOnIpv6() {
  cluster = new MemoryCluster(2);
  cluster.net.latencyMs[4] = 10;
  cluster.net.latencyMs[6] = 1;
  const [a, b] = cluster.nodes as [MemoryNode, MemoryNode];
  await cluster.start();
  cluster.clock.advance(1500);
  cluster.firstPacket(a, b);
  expect(cluster.clock.advanceUntil(() => cluster!.wire(a, b) === 'ipv6' && cluster!.wire(b, a) === 'ipv6', 5000)).toBeDefined();
  return { c: cluster, a, b };
}

describe('afsteerd metrics, history and logs (in memory)', () => {
  it('a blackhole shows as a switch with reason blackhole, the family state, probe counters, and the data-plane counters from the stats reader; no series names a pod', async () => {
    const { c, a, b } = await twoOnIpv6();
    let reads = 0;
    const m = await createMetrics(
      a.daemon.parts(),
      () => ({ encap: 7n + BigInt(reads++), decap: 5n, dropSpoof: 2n, dropMismatch: 0n, encapFail: 0n, decapFail: 0n, srcForeign: 1n }),
      'test',
    );
    const before = await m.text();
    expect(sample(before, 'afsteer_peer_family_state', { peer: b.name, family: 'IPv6', state: 'up' })).toBe(1);
    expect(sample(before, 'afsteer_switches_total', { reason: 'blackhole' })).toBe(0);
    expect(sample(before, 'afsteer_pairs', { peer: b.name, wire: 'ipv6' })).toBe(1);
    expect(sample(before, 'afsteer_peer_rtt_seconds', { peer: b.name, family: 'IPv6' })).toBeCloseTo(0.002, 3);
    expect(sample(before, 'afsteer_peer_rtt_seconds', { peer: b.name, family: 'IPv4' })).toBeCloseTo(0.02, 3);
    expect(sample(before, 'afsteer_dataplane_packets_total', { counter: 'encapsulated' })).toBe(7);
    expect(sample(before, 'afsteer_dataplane_dropped_packets_total', { reason: 'spoofed' })).toBe(2);
    const probesSent = sample(before, 'afsteer_probe_packets_total', { direction: 'sent', family: 'IPv6' })!;
    expect(probesSent).toBeGreaterThan(50);
    expect(sample(before, 'afsteer_probe_bytes_total', { direction: 'sent', family: 'IPv6' })).toBeGreaterThan(probesSent * 20);
    c.net.blackholed.add(6);
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv4', 2000, 1)).toBeDefined();
    const after = await m.text();
    expect(sample(after, 'afsteer_switches_total', { reason: 'blackhole' })).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'afsteer_peer_family_state', { peer: b.name, family: 'IPv6', state: 'blackhole' })).toBe(1);
    expect(sample(after, 'afsteer_peer_family_state', { peer: b.name, family: 'IPv6', state: 'up' })).toBe(0);
    expect(sample(after, 'afsteer_pairs', { peer: b.name, wire: 'ipv4' })).toBe(1);
    expect(sample(after, 'afsteer_dataplane_packets_total', { counter: 'encapsulated' })).toBe(8);
    // Cardinality: peers and families only; the pods' CNF ids appear nowhere.
    expect(after).not.toContain(a.pod.cnf);
    expect(after).not.toContain(b.pod.cnf);
    const names = new Set([...after.matchAll(/^# TYPE (\S+)/gm)].map((x) => x[1]));
    for (const n of METRIC_NAMES) expect(names, n).toContain(n);
  });

  it('dropped datagrams are counted by reason and logged as one summary per 10 s, not per datagram; family state changes are one line each', async () => {
    const { c, a, b } = await twoOnIpv6();
    const lines: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
    setLogBackend((level, msg, fields) => lines.push({ level, msg, fields }));
    const obs = new Observer(a.daemon.parts());
    obs.start();
    cleanups.push(() => obs.stop());
    const m = await createMetrics(a.daemon.parts(), undefined, 'test');
    // 500 forged datagrams (a flipped MAC) at node a over 20 s.
    const t = c.net.transport(7000);
    await t.start({ ipv4: '10.0.0.9' }, undefined, () => {});
    for (let i = 0; i < 500; i++) {
      t.send(4, a.addresses.ipv4, a.cfg.port, Buffer.concat([Buffer.from('AF\x01\x01'), Buffer.alloc(60, i)]));
      c.clock.advance(40);
    }
    t.close();
    const text = await m.text();
    expect(sample(text, 'afsteer_control_datagrams_dropped_total', { reason: 'bad_mac' })).toBe(500);
    const summaries = lines.filter((l) => l.msg === 'datagrams dropped');
    expect(summaries.length).toBeGreaterThanOrEqual(1);
    expect(summaries.length).toBeLessThanOrEqual(3);
    expect(summaries.reduce((s, l) => s + Number(l.fields!.total), 0)).toBeLessThanOrEqual(500);
    lines.length = 0;
    c.net.blackholed.add(6);
    c.clock.advance(3000);
    const states = lines.filter((l) => l.msg === 'family state' && l.fields!.family === 'IPv6');
    expect(states).toHaveLength(1);
    expect(states[0]).toMatchObject({ level: 'warn', fields: { peer: b.name, from: 'up', to: 'blackhole' } });
    const switches = lines.filter((l) => l.msg === 'switch');
    expect(switches.length).toBeGreaterThanOrEqual(1);
    for (const l of switches) expect(String(l.fields!.reason)).toMatch(/blackhole/);
    // History: the blackhole samples and the switch marker with its reason, for this peer.
    const h = obs.history.of(b.name, -Infinity, Date.parse(c.clock.wallIso()));
    expect(h.t.length).toBeGreaterThan(20);
    expect(h.families.IPv6!.state.at(-1)).toBe('blackhole');
    expect(h.families.IPv4!.state.at(-1)).toBe('up');
    expect(h.families.IPv4!.rtt.at(-1)).toBeCloseTo(20, 0);
    expect(h.switches.at(-1)).toMatchObject({ from: 'ipv6', to: 'ipv4', class: 'blackhole' });
  });

  it('the history keeps 15 minutes and no more, and forgets a peer gone for all of them', () => {
    const hist = new History();
    const peer = (node: string, rtt: number) => ({
      node,
      alive: true,
      active: false,
      pairs: { native: 0, ipv4: 0, ipv6: 0 },
      pinned: { honoured: 0, overridden: 0 },
      families: {
        IPv4: { state: 'up' as const, metrics: { latency_ms: rtt, jitter_ms: 0, packet_loss: 0, blackhole: false, samples: 200 } },
      },
    });
    for (let i = 0; i < 1200; i++)
      hist.sample(1_000_000 + i * 1000, { at: i, peers: i < 100 ? [peer('gone', 1), peer('p', i)] : [peer('p', i)] });
    const h = hist.of('p');
    expect(h.t).toHaveLength(900);
    expect(h.t.at(-1)! - h.t[0]!).toBe(899_000);
    expect(h.families.IPv4!.rtt[0]).toBe(300);
    expect(h.families.IPv4!.rtt.at(-1)).toBe(1199);
    expect(hist.peers()).toEqual(['p']);
  });

  it('the server answers /metrics, /history.json (incremental with since) and / on its address', async () => {
    const { c, a, b } = await twoOnIpv6();
    const obs = new Observer(a.daemon.parts());
    obs.start();
    cleanups.push(() => obs.stop());
    c.clock.advance(5000);
    const metrics = await createMetrics(a.daemon.parts(), undefined, 'test');
    const server = await serveWeb('127.0.0.1', 0, { metrics, history: obs.history, node: a.name, activePeers: () => new Set([b.name]) });
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const get = async (p: string) => fetch(`http://127.0.0.1:${port}${p}`, { signal: AbortSignal.timeout(5000) });
    const mt = await get('/metrics');
    expect(mt.headers.get('content-type')).toMatch(/text\/plain/);
    expect(sample(await mt.text(), 'afsteer_peers')).toBe(1);
    const h = (await (await get('/history.json')).json()) as any;
    expect(h.peers[0]).toMatchObject({ peer: b.name, active: true });
    const lastT = h.peers[0].t.at(-1);
    c.clock.advance(3000);
    const h2 = (await (await get(`/history.json?since=${lastT}`)).json()) as any;
    expect(h2.peers[0].t).toHaveLength(3);
    const page = await (await get('/')).text();
    expect(page).toContain("el('svg'");
    // Self-contained: no script or stylesheet from anywhere.
    expect(page).not.toMatch(/<script[^>]+src=|<link[^>]+href=|@import/);
    expect((await get('/nope')).status).toBe(404);
  });
});

describe('afsteerd prefer (in memory)', () => {
  it('a pin on either end is agreed by both; a blackholed pinned family is left and taken again when back; auto returns to negotiation; pins survive a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'afsteer-pins-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    cluster = new MemoryCluster(2);
    const c = cluster;
    c.net.latencyMs[4] = 10;
    c.net.latencyMs[6] = 1;
    const [a, b] = c.nodes as [MemoryNode, MemoryNode];
    b.pinsDir = join(dir, 'b');
    require('node:fs').mkdirSync(b.pinsDir);
    // b is the follower (ns/pod-1 < ns/pod-2: a leads); rebuild b with its pins dir.
    await c.start();
    await c.restart(b);
    c.clock.advance(1500);
    c.firstPacket(a, b);
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv6' && c.wire(b, a) === 'ipv6', 5000)).toBeDefined();
    // The follower's operator pins IPv4 (the slower family): the leader is told and both move.
    expect(b.daemon.control({ op: 'prefer', target: a.name, family: 'ipv4' })).toMatchObject({ ok: true, kind: 'node', family: 'IPv4' });
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv4' && c.wire(b, a) === 'ipv4', 1000, 1)).toBeDefined();
    expect(a.daemon.status().pairs[0]!.pin).toMatchObject({ family: 'IPv4', source: 'peer', honoured: true });
    expect(a.daemon.status().switches.at(-1)!.reason).toMatch(/pinned IPv4/);
    // It stays there although IPv6 is faster (several evaluations later).
    c.clock.advance(5000);
    expect([c.wire(a, b), c.wire(b, a)]).toEqual(['ipv4', 'ipv4']);
    // The pinned family blackholed: left at once; status and metrics say the pin is not honoured.
    c.net.blackholed.add(4);
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv6' && c.wire(b, a) === 'ipv6', 2000, 1)).toBeLessThan(200);
    c.clock.advance(500);
    expect(a.daemon.status().pairs[0]!.pin).toMatchObject({ family: 'IPv4', honoured: false });
    const m = await createMetrics(a.daemon.parts(), undefined, 'test');
    expect(sample(await m.text(), 'afsteer_pairs_pinned', { peer: b.name, honoured: 'false' })).toBe(1);
    // Back: the pin again (no hold-down for an operator's choice).
    c.net.blackholed.delete(4);
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv4' && c.wire(b, a) === 'ipv4', 3000, 5)).toBeDefined();
    // A restart of b keeps the pin (persisted in its stateDir): no flap, still IPv4.
    await c.restart(b);
    c.clock.advance(3000);
    expect([c.wire(a, b), c.wire(b, a)]).toEqual(['ipv4', 'ipv4']);
    expect(b.daemon.status().pins).toEqual({ nodes: { [a.name]: 'IPv4' }, cnfs: {} });
    // auto: back to negotiation, which picks the faster IPv6 again.
    expect(b.daemon.control({ op: 'prefer', target: a.name, family: 'auto' })).toMatchObject({ ok: true });
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv6' && c.wire(b, a) === 'ipv6', 20_000, 10)).toBeDefined();
    expect(a.daemon.status().pairs[0]!.pin).toBeNull();
  });

  it('a CNF pin on the leader; unknown targets and families are refused', async () => {
    const { c, a, b } = await twoOnIpv6();
    expect(a.daemon.control({ op: 'prefer', target: b.pod.cnf, family: 'ipv4' })).toMatchObject({ ok: true, kind: 'cnf' });
    expect(c.clock.advanceUntil(() => c.wire(a, b) === 'ipv4' && c.wire(b, a) === 'ipv4', 1000, 1)).toBeDefined();
    expect(a.daemon.control({ op: 'prefer', target: 'no-such-node', family: 'ipv4' })).toMatchObject({ ok: false });
    expect(a.daemon.control({ op: 'prefer', target: b.name, family: 'ipv5' })).toMatchObject({ ok: false });
  });
});
