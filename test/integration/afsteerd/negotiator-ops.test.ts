/**
 * afsteerd in operation, with the real tools: two simulated nodes (real daemons, real UDP, pods
 * through the real chain), Debian's Prometheus scraping node a's daemon every second from inside
 * node a's namespace, `promtool check metrics` on a scrape, headless Chromium loading the page,
 * and `afsteerd prefer` through the CLI: a pin set on the follower moves both ends, a blackhole
 * of the pinned family is still left (Prometheus sees the switch with reason blackhole and the
 * family state), the pin is taken again when the family is back, and survives a restart.
 */

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curlIn, inNs, Prometheus, withPage } from '../../support/netns-tools';
import { AFSTEERD_BIN, type SimDaemon, type SimPod, type TwoNodes, twoNodesWithDaemons, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

const execFileP = promisify(execFile);
announceSkip('afsteerd metrics, Prometheus, page and prefer');

describe.skipIf(!IS_ROOT)('afsteerd metrics, Prometheus, page and prefer', () => {
  let t: TwoNodes;
  let pa: SimPod;
  let pb: SimPod;
  let da: SimDaemon;
  let db: SimDaemon;
  let prom: Prometheus;
  const metricsUrl = 'http://127.0.0.1:9617';
  const prefer = (d: SimDaemon, ...args: string[]) =>
    execFileP(AFSTEERD_BIN, ['prefer', ...args, '--socket', d.socket], { encoding: 'utf8', timeout: 5000 });
  const wires = () => [t.wireOf(pa), t.wireOf(pb)];
  const value = async (q: string) => {
    const r = await prom.query(q);
    return r.length ? Number(r[0]!.value[1]) : undefined;
  };

  beforeAll(async () => {
    ({ t, pa, pb, da, db } = await twoNodesWithDaemons());
    prom = new Prometheus(t.a.nsPath, join(t.dir, 'prometheus'), ['127.0.0.1:9617']);
    await prom.start();
  }, 90_000);
  afterAll(async () => {
    await prom?.stop();
    t?.cleanup();
  });

  it('serves Prometheus text that promtool accepts, and Prometheus scrapes it every second', async () => {
    await waitFor(async () => (await t.status(da)).peers[0]?.families?.IPv4?.state === 'up', 10_000, 'peer up');
    const text = await curlIn(t.a.nsPath, `${metricsUrl}/metrics`);
    expect(text).toMatch(/^afsteer_peer_rtt_seconds\{peer="node-b",family="IPv4"\} /m);
    const check = await inNs(t.a.nsPath, ['promtool', 'check', 'metrics'], 10_000, text);
    expect(check.trim()).toBe('');
    await waitFor(async () => (await value('up{job="afsteerd"}')) === 1, 15_000, 'prometheus scraping afsteerd');
    await waitFor(async () => ((await value('count_over_time(afsteer_peers[10s])')) ?? 0) >= 5, 15_000, '≥ 5 scrapes in 10 s');
    // The metrics listener is on the node's loopback only: not reachable on its control address.
    await expect(curlIn(t.b.nsPath, `http://${t.nodeAddresses(t.a).ipv4}:9617/metrics`, 2000)).rejects.toThrow();
  });

  it('prefer on the follower pins both ends; a blackhole of the pinned family is still left; Prometheus sees the switch (reason blackhole) and the family state', async () => {
    await t.inPod(pa, ['ping', '-c', '2', '-i', '0.1', '-W', '1', pb.ipv4]);
    await waitFor(
      async () => (await t.status(da)).pairs[0]?.peerDecap === true && (await t.status(db)).pairs[0]?.peerDecap === true,
      10_000,
      'pair on both nodes',
    );
    // node-b's pod sorts after node-a's: b follows. Its operator pins IPv4.
    const { stdout } = await prefer(db, 'node-a', 'ipv4');
    expect(stdout).toMatch(/pinned to ipv4/);
    await waitFor(() => wires().every((w) => w === 'ipv4'), 5000, 'both ends on the pinned IPv4');
    expect((await t.status(da)).pairs[0].pin).toMatchObject({ family: 'IPv4', source: 'peer', honoured: true });
    const before = (await value('sum(afsteer_switches_total{reason="blackhole"})')) ?? 0;
    await t.impair(4, 'blackhole');
    await waitFor(() => wires().every((w) => w === 'ipv6'), 3000, 'both ends off the blackholed pin');
    await waitFor(
      async () => ((await value('sum(afsteer_switches_total{reason="blackhole"})')) ?? 0) > before,
      10_000,
      'the switch counter rose with reason blackhole',
    );
    await waitFor(
      async () => (await value('afsteer_peer_family_state{peer="node-b",family="IPv4",state="blackhole"}')) === 1,
      10_000,
      'IPv4 state blackhole in Prometheus',
    );
    expect(await value('afsteer_peer_family_state{peer="node-b",family="IPv6",state="up"}')).toBe(1);
    await waitFor(
      async () => (await value('afsteer_pairs_pinned{peer="node-b",honoured="false"}')) === 1,
      10_000,
      'the pin shown not honoured',
    );
    expect((await t.status(da)).pairs[0].pin).toMatchObject({ family: 'IPv4', honoured: false });
  });

  it('headless Chromium draws both families of the peer and the switch with its reason', async () => {
    await new Promise((r) => setTimeout(r, 2500));
    const drawn = await withPage<{ families: string[]; points: number[]; switches: string[]; badge: string | null }>(
      t.dir,
      t.a.nsPath,
      `${metricsUrl}/`,
      'svg.chart[data-peer="node-b"] g.switch',
      `(() => { const s = document.querySelector('svg.chart[data-peer="node-b"]');
        return { families: [...s.querySelectorAll('path.rtt')].map((p) => p.getAttribute('data-family')),
          points: [...s.querySelectorAll('path.rtt')].map((p) => Number(p.getAttribute('data-points'))),
          switches: [...s.querySelectorAll('g.switch')].map((g) => g.getAttribute('data-reason')),
          badge: document.querySelector('.peer[data-peer="node-b"] .badge[data-family="IPv4"]')?.getAttribute('data-state') ?? null }; })()`,
      join(t.dir, 'page.png'),
    );
    expect(drawn.families.sort()).toEqual(['IPv4', 'IPv6']);
    for (const n of drawn.points) expect(n).toBeGreaterThan(3);
    expect(drawn.switches).toContain('blackhole');
    expect(drawn.badge).toBe('blackhole');
  });

  it('the pinned family back: the pin again; after a restart of the follower the pin still holds; auto returns to negotiation', async () => {
    await t.impair(4, null);
    await waitFor(() => wires().every((w) => w === 'ipv4'), 10_000, 'back on the pinned IPv4');
    db.child.kill('SIGTERM');
    expect(await Promise.race([db.exited, new Promise((r) => setTimeout(() => r('timeout'), 5000))])).toBe(0);
    db = await t.startDaemon(t.b);
    await waitFor(async () => (await t.status(db)).pairs[0]?.pin?.family === 'IPv4', 10_000, 'pin back after the restart');
    expect(wires()).toEqual(['ipv4', 'ipv4']);
    expect((await t.status(db)).pins).toEqual({ nodes: { 'node-a': 'IPv4' }, cnfs: {} });
    await prefer(db, 'node-a', 'auto');
    await waitFor(
      async () => (await t.status(da)).pairs[0]?.pin === null && (await t.status(db)).pairs[0]?.pin === null,
      5000,
      'pins gone from both',
    );
    await expect(prefer(db, 'no-such-node', 'ipv4')).rejects.toThrow(/neither a known peer/);
  });
});
