/**
 * An upgrade and a rollback of a two-node setup with live pairs, as a DaemonSet rollout does them,
 * node by node, the plugin first (the init container installs the executable), then afsteerd:
 * the previous release (PREVIOUS, built from git once per machine: test/support/release-build.ts)
 * → this build → back to PREVIOUS. Throughout: a steered pair (a0 ↔ b0, pinned to IPv6 with
 * `afsteerd prefer`, its IPv4 stream carried over IPv6) and a protected pair (a1 ↔ b1, `always`:
 * both families, duplicates dropped at the receiver) carry paced TCP streams and a numbered UDP
 * stream that last the whole rollout; the wires in both nodes' route maps are sampled every 20 ms.
 *
 * At each step a new pod is added (so ADD runs on every mix: new plugin → old afsteerd and old
 * plugin → new afsteerd through the hand-off, and each version alone) and reaches the other node
 * on both families; pods made before the upgrade are deleted by the new version and, after the
 * rollback, by the old one (and a pod of the new version by the old one). afsteerd of this build
 * moves every pod on its node onto its programs at start (tc filter replace) and removes the
 * previous release's program pins; the previous release's afsteerd leaves the pods as they are.
 * At the end: both streams intact (same sha256 both ends), no UDP datagram lost or duplicated,
 * the live pairs' sampled wires never changed and their routes are as they were (wire,
 * generation, counter index, protection), the pin still honoured and both ends still duplicating.
 *
 * Cost: a cold build of PREVIOUS (git archive, npm ci --prefer-offline, the build) took 32 s on
 * the 2-core machine (under load from other work); with the cache warm the test takes ~35 s, most
 * of it the streams (STREAM_MS).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoCounts } from '../../../src/bpf/echo-maps';
import { listEndpoints } from '../../../src/bpf/endpoint-map';
import { closeFds, objectId, openPinned } from '../../../src/bpf/libbpf';
import { MAPS } from '../../../src/bpf/maps-layout';
import { withPinnedMap } from '../../../src/bpf/pinned-map';
import { bpfObject, PROGRAMS, programPinDir } from '../../../src/bpf/programs';
import { listPairs } from '../../../src/bpf/steering';
import { readRoutes } from '../../../src/bpf/steering-writer';
import { loadState } from '../../../src/node/attachments';
import { exited } from '../../support/process';
import { type ReleaseBuild, releaseBuild } from '../../support/release-build';
import type { SimNode } from '../../support/sim-topology';
import { AFSTEERD_BIN, nsExec, type SimDaemon, type SimPod, TwoNodes, waitFor } from '../../support/two-nodes';
import { AFSTEER_BIN, announceSkip, IS_ROOT } from '../../support/world';

announceSkip('upgrade and rollback with live pairs');

/** The previous release: the commit this round of work started from. */
const PREVIOUS = '1ad255db14e86d37ee39d0bc17cdd68e9c021751';
/** Budget well above the streams (as in the protection test). */
const DAEMON = { protection: { budgetBytesPerSecond: 50_000_000 } };
/** How long the streams run: the whole rollout and rollback must fit in it (they take ~6 s here; checked). */
const STREAM_MS = 25_000;
const UDP_RATE = 1000;

describe.skipIf(!IS_ROOT)('upgrade and rollback with live pairs (previous release ↔ this build)', () => {
  let old: ReleaseBuild;
  let t: TwoNodes;
  const daemons = new Map<SimNode, SimDaemon>();
  const pods = new Map<string, SimPod>();
  const timings: string[] = [];
  let t0 = 0;
  const mark = (what: string) => timings.push(`${((Date.now() - t0) / 1000).toFixed(1)} s ${what}`);

  const daemon = (node: SimNode) => daemons.get(node)!;
  const pod = (name: string) => pods.get(name)!;
  const statusOf = (node: SimNode) => t.status(daemon(node));
  const handedOver = (d: SimDaemon, containerId: string) =>
    d.logs.filter((l) => l.msg === 'ran a handed-over ADD' && l.containerId === containerId && l.exitCode === 0);

  /** Restarts node's afsteerd as bin (SIGTERM, then the other build), as a DaemonSet replaces its pod. */
  const replaceDaemon = async (node: SimNode, bin: string) => {
    const d = daemon(node);
    d.child.kill('SIGTERM');
    await exited(d.child);
    daemons.set(node, await t.startDaemon(node, DAEMON, t.keyFile, [bin]));
  };
  /** Adds pod name on node with whatever plugin the node has; checks it reaches b0 / a0 on both families. */
  const addAndReach = async (node: SimNode, name: string) => {
    const p = await t.addPod(node, name);
    pods.set(name, p);
    const other = node === t.a ? pod('b0') : pod('a0');
    for (const addr of [other.ipv4, other.ipv6])
      expect(await t.inPod(p, ['ping', '-c', '1', '-W', '3', addr]), `${name} -> ${addr}`).toMatch(/1 received/);
    return p;
  };
  /**
   * Adds pod base on node and checks afsteerd ran its ADD (the hand-off). The plugin does the ADD
   * itself when afsteerd does not answer within 30 ms (by design: a slow daemon must not slow ADD),
   * which a loaded machine sometimes causes: then another pod is added, up to 5 in all. Every ADD
   * must succeed and reach, handed over or not. Returns the names added.
   */
  const addHandedOver = async (node: SimNode, base: string, what: string): Promise<string[]> => {
    const names: string[] = [];
    for (let i = 0; i < 5; i++) {
      const name = i ? `${base}r${i}` : base;
      names.push(name);
      await addAndReach(node, name);
      const ran = await waitFor(() => handedOver(daemon(node), `ctr-${name}`).length === 1, 1000, what).then(
        () => true,
        () => false,
      );
      if (ran) return names;
    }
    throw new Error(`none of 5 ADDs on node ${node.name} was run by afsteerd: ${what}`);
  };
  const del = async (name: string) => {
    const p = pod(name);
    await t.driver(p.node, 'del', p.nsPath, p.id);
    pods.delete(name);
    expect(loadState(p.node.stateDir, p.id, 'eth0')).toBeUndefined();
    expect(listEndpoints(p.node.pinDir).has(p.hostIfindex)).toBe(false);
  };
  /** Ids of the programs pinned in dir. */
  const pinnedIds = (dir: string) =>
    Object.values(PROGRAMS).map((name) => {
      const fd = openPinned(join(dir, name));
      try {
        return objectId(fd);
      } finally {
        closeFds(fd);
      }
    });
  /** Program ids of afsteer's filters on node (in its namespace): each pod's ingress and egress, and the bridge's egress. */
  const filterIds = async (node: SimNode) => {
    const id = async (dev: string, point: string) =>
      Number(/ id (\d+) /.exec(await nsExec(node.nsPath, ['tc', 'filter', 'show', 'dev', dev, point]))?.[1]);
    const out: number[] = [await id('cni0', 'egress')];
    for (const p of pods.values()) if (p.node === node) out.push(await id(p.hostIfname, 'ingress'), await id(p.hostIfname, 'egress'));
    return out;
  };

  beforeAll(async () => {
    const b0 = Date.now();
    old = await releaseBuild(PREVIOUS);
    console.log(
      `upgrade test: previous release ${PREVIOUS.slice(0, 12)} ${old.cached ? 'from the cache' : 'built'} (its build took ${old.buildSeconds} s; this run waited ${((Date.now() - b0) / 1000).toFixed(1)} s)`,
    );
    t = new TwoNodes();
    try {
      await t.up();
      for (const node of t.nodes) {
        t.installPlugin(node, old.afsteer);
        daemons.set(node, await t.startDaemon(node, DAEMON, t.keyFile, [old.afsteerd]));
      }
      await waitFor(
        async () =>
          (await statusOf(t.a)).peers[0]?.families?.IPv6?.state === 'up' && (await statusOf(t.b)).peers[0]?.families?.IPv4?.state === 'up',
        15_000,
        'peers up',
      );
      pods.set('a0', await t.addPod(t.a, 'a0'));
      pods.set('b0', await t.addPod(t.b, 'b0'));
      pods.set('a1', await t.addPod(t.a, 'a1', 'IgnoreUnknown=1;AFSTEER_PROTECT=always'));
      pods.set('b1', await t.addPod(t.b, 'b1'));
      pods.set('a9', await t.addPod(t.a, 'a9'));
      pods.set('b9', await t.addPod(t.b, 'b9'));
    } catch (err) {
      t.cleanup();
      throw err;
    }
  }, 600_000);
  afterAll(() => {
    if (timings.length) console.log(`upgrade test timeline:\n  ${timings.join('\n  ')}`);
    t?.cleanup();
  });

  it('the previous release runs the pairs: a0 ↔ b0 steered over IPv6 by an operator pin, a1 ↔ b1 protected', async () => {
    const { execFileP } = await import('../../support/process');
    await execFileP(old.afsteerd, ['prefer', 'ctr-a0', 'ipv6', '--socket', daemon(t.a).socket], { encoding: 'utf8', timeout: 5000 });
    await t.inPod(pod('a0'), ['ping', '-c', '3', '-i', '0.2', '-W', '1', pod('b0').ipv4]);
    await t.inPod(pod('a1'), ['ping', '-c', '3', '-i', '0.2', '-W', '1', pod('b1').ipv4]);
    await waitFor(() => t.wireOf(pod('a0')) === 'ipv6' && t.wireOf(pod('b0')) === 'ipv6', 10_000, 'a0 ↔ b0 steered over IPv6');
    const pairOf = async (node: SimNode, local: string) => ((await statusOf(node)).pairs as any[]).find((p) => p.local === local);
    await waitFor(
      async () =>
        (await pairOf(t.a, 'ctr-a1'))?.protection.duplicating === true && (await pairOf(t.b, 'ctr-b1'))?.protection.duplicating === true,
      10_000,
      'a1 ↔ b1 duplicating on both ends',
    );
  });

  it('rolled out node by node (plugin, then afsteerd) and rolled back under live streams: intact, no switch, ADD and DEL on every mix', async () => {
    t0 = Date.now();
    const hash = bpfObject().hash;
    // The streams: paced TCP on both pairs (IPv4 app addresses: a0's crosses as IPv6), numbered UDP on the protected one.
    const tcp0 = await t.server(pod('b0'), pod('b0').ipv4, 7300);
    const tcp1 = await t.server(pod('b1'), pod('b1').ipv4, 7301);
    const udpCount = Math.round((UDP_RATE * STREAM_MS) / 1000);
    const udp1 = await t.server(pod('b1'), pod('b1').ipv4, 7302, false, 'udp-seq-server', [
      '--expect',
      String(udpCount),
      '--idle-ms',
      '3000',
    ]);
    const paced = ['--duration-ms', String(STREAM_MS), '--chunk', '8192', '--interval-ms', '5'];
    const clients = [
      t.client(pod('a0'), pod('b0').ipv4, 7300, paced),
      t.client(pod('a1'), pod('b1').ipv4, 7301, paced),
      t.client(
        pod('a1'),
        pod('b1').ipv4,
        7302,
        ['--count', String(udpCount), '--rate', String(UDP_RATE), '--size', '200'],
        'udp-seq-client',
      ),
    ];
    // Every 20 ms, without the writer lock: the wire of every route on both nodes (the rollout must
    // change none), and whether each end of the protected pair sends both copies (how long it did not).
    const wiresSeen = new Map<string, Set<string>>();
    const unprotected = new Map<string, { since?: number; totalMs: number; longestMs: number }>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const now = Date.now();
        for (const node of t.nodes) {
          const [local, remote] = node === t.a ? [pod('a1'), pod('b1')] : [pod('b1'), pod('a1')];
          for (const { key, route } of withPinnedMap(
            node.pinDir,
            MAPS.routes.name,
            MAPS.routes.keySize,
            MAPS.routes.valueSize,
            readRoutes,
          )) {
            if (key.family !== 6) continue;
            const k = `${node.name} #${key.ifindex} ${key.address}`;
            if (!wiresSeen.has(k)) wiresSeen.set(k, new Set());
            wiresSeen.get(k)!.add(route.wire);
            if (key.ifindex !== local.hostIfindex || key.address !== remote.ipv6 || !unprotected.has(node.name)) continue;
            const u = unprotected.get(node.name)!;
            if (!route.protect && u.since === undefined) u.since = now;
            if (route.protect && u.since !== undefined) {
              u.totalMs += now - u.since;
              u.longestMs = Math.max(u.longestMs, now - u.since);
              u.since = undefined;
            }
          }
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    for (const node of t.nodes) unprotected.set(node.name, { totalMs: 0, longestMs: 0 });
    await new Promise((r) => setTimeout(r, 1500));
    // The routes when the rollout starts (new pods' pairs made later follow the policy and the pin from native: not the rollout's).
    const before = new Map([...wiresSeen].map(([k, w]) => [k, [...w]]));
    // The live pairs' routes as the maps hold them (wire, generation, counter index, protection): the same at the end.
    const livePairs = () =>
      t.nodes.flatMap((node) =>
        listPairs(node.pinDir)
          .filter((p) =>
            [
              ['a0', 'b0'],
              ['b0', 'a0'],
              ['a1', 'b1'],
              ['b1', 'a1'],
            ].some(([l, r]) => pod(l!).node === node && pod(l!).hostIfindex === p.ifindex && pod(r!).ipv6 === p.remoteIpv6),
          )
          // protect: whether this end sends both copies, sampled above (it pauses when a daemon restarts).
          .map(({ counters: _, protect: __, ...p }) => ({ node: node.name, ...p })),
      );
    const pairsBefore = livePairs();
    expect(pairsBefore).toHaveLength(4);
    mark('streams running');

    try {
      // Upgrade, node A then node B: the plugin first (its ADD handed to the old afsteerd), then afsteerd.
      for (const [node, n] of [
        [t.a, 'a'],
        [t.b, 'b'],
      ] as const) {
        t.installPlugin(node, AFSTEER_BIN);
        const added = await addHandedOver(node, `${n}2`, `the previous afsteerd on ${n} running this build's plugin's ADD`);
        mark(`${n}: new plugin; ${added.join(', ')} added, the last through the previous afsteerd`);
        const filtersBefore = await filterIds(node);
        await replaceDaemon(node, AFSTEERD_BIN);
        // This build's afsteerd moved every pod of the node onto its programs and removed the previous release's pins.
        const moved = daemon(node).logs.find((l) => l.msg === 'pins ready for this build');
        expect(moved, JSON.stringify(daemon(node).logs.slice(0, 20))).toBeDefined();
        const current = pinnedIds(programPinDir(node.pinDir, hash));
        const onPrevious = filtersBefore.filter((id) => !current.includes(id)).length;
        expect(onPrevious).toBeGreaterThanOrEqual(8); // a0, a1, a9 and the pod added through the previous afsteerd, 2 filters each
        expect(Number(moved!.replaced)).toBe(onPrevious);
        expect((await filterIds(node)).every((id) => current.includes(id))).toBe(true);
        // The previous release's pod programs are gone; program directories left: this build's and the echo reflectors'.
        const podDirs = readdirSync(join(node.pinDir, 'progs')).filter((d) => existsSync(join(node.pinDir, 'progs', d, PROGRAMS.fromPod)));
        expect(podDirs).toEqual([hash]);
        await addAndReach(node, `${n}3`);
        mark(`${n}: this build's afsteerd; ${n}3 added`);
      }
      // This build's kernel echo reflectors take over from the previous release's (which answered
      // anyone) once the peers are on the allow-list: no known peer's probe is refused (before
      // this waited, node A's refused 32 of node B's, and the protected pair could switch).
      for (const node of [t.a, t.b]) {
        const logs = () => daemon(node).logs;
        expect(logs().some((l) => String(l.msg).startsWith("another build's echo reflector answers"))).toBe(true);
        await waitFor(
          () => logs().some((l) => l.msg === 'echo reflector attached'),
          10_000,
          `node ${node.name}'s echo reflector taking over`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
      for (const node of [t.a, t.b]) expect(echoCounts(node.pinDir).refused['unknown-source'], `node ${node.name}`).toBe(0);
      mark("this build's echo reflectors took over on both nodes");
      // A pod from before the upgrade, deleted by this build.
      await del('a9');
      mark('a9 (made by the previous release) deleted by this build');

      // Rollback, node A then node B: the previous plugin first (its ADD handed to this build's afsteerd), then afsteerd.
      for (const [node, n] of [
        [t.a, 'a'],
        [t.b, 'b'],
      ] as const) {
        t.installPlugin(node, old.afsteer);
        const added = await addHandedOver(node, `${n}4`, `this build's afsteerd on ${n} running the previous plugin's ADD`);
        mark(`${n}: previous plugin; ${added.join(', ')} added, the last through this build's afsteerd`);
        await replaceDaemon(node, old.afsteerd);
        await addAndReach(node, `${n}5`);
        mark(`${n}: previous afsteerd; ${n}5 added`);
      }
      // A pod from before the upgrade and a pod of this build, deleted by the previous release.
      await del('b9');
      await del('a3');
      mark('b9 (previous release) and a3 (this build) deleted by the previous release');
      expect(Date.now() - t0, 'the rollout and rollback outlasted the streams: raise STREAM_MS').toBeLessThan(STREAM_MS - 2000);
      expect(livePairs()).toEqual(pairsBefore);
    } finally {
      const results = await Promise.all(clients);
      const [s0, s1, u1] = [await tcp0.done, await tcp1.done, await udp1.done];
      sampling = false;
      await sampler;
      mark('streams ended');
      console.log(
        `upgrade test: TCP a0→b0 ${s0.bytes} B (longest stall ${s0.maxGapMs} ms), a1→b1 ${s1.bytes} B (${s1.maxGapMs} ms); UDP a1→b1 ${u1.unique}/${results[2]!.sent} unique, ${u1.lost} lost, ${u1.duplicated} duplicated; ` +
          `a1↔b1 not sending both copies: ${[...unprotected].map(([n, u]) => `${n} ${u.totalMs} ms in all, longest ${u.longestMs} ms${u.since === undefined ? '' : ' (still off)'}`).join(', ')}`,
      );
      expect(s0.sha256).toBe(results[0]!.sha256);
      expect(s0.bytes).toBe(results[0]!.bytes);
      expect(s1.sha256).toBe(results[1]!.sha256);
      expect(s1.bytes).toBe(results[1]!.bytes);
      expect({ lost: u1.lost, duplicated: u1.duplicated }).toEqual({ lost: 0, duplicated: 0 });
    }
    // Every pair there when the rollout started (the live pairs, on both nodes) kept its one wire all along: a0 ↔ b0 IPv6.
    const live = ['a0', 'b0', 'a1', 'b1'].map((n) => `${pod(n).node.name} #${pod(n).hostIfindex} `);
    expect([...before.keys()].filter((k) => live.some((l) => k.startsWith(l))).length).toBeGreaterThanOrEqual(4);
    const seen = [...before.keys()].map((k) => `${k}: ${[...wiresSeen.get(k)!].join(' → ')}`);
    expect(seen.filter((s) => s.includes('→'))).toEqual([]);
    expect(seen.filter((s) => s.startsWith(live[0]!) || s.startsWith(live[1]!))).toEqual([
      `${live[0]}${pod('b0').ipv6}: ipv6`,
      `${live[1]}${pod('a0').ipv6}: ipv6`,
    ]);
    // A restarted afsteerd (either end) stops the protected pair's copies until the peer's next
    // negotiation confirms its dedup window again: within a peer timeout (3 s here), every time.
    for (const [n, u] of unprotected) {
      expect(u.since, `${n}: a1 ↔ b1 still not duplicating when the streams ended`).toBeUndefined();
      expect(u.longestMs, `${n}: a1 ↔ b1 not duplicating for ${u.longestMs} ms in one stretch`).toBeLessThan(3000);
    }
    // The previous release's afsteerd, after the rollback, still honours the pin and duplicates on the protected pair.
    const pairOf = async (node: SimNode, local: string) => ((await statusOf(node)).pairs as any[]).find((p) => p.local === local);
    expect(await pairOf(t.a, 'ctr-a0')).toMatchObject({ wire: 'ipv6' });
    expect((await pairOf(t.a, 'ctr-a1'))?.protection.duplicating).toBe(true);
    expect((await pairOf(t.b, 'ctr-b1'))?.protection.duplicating).toBe(true);
  }, 180_000);
});
