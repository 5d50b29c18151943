/**
 * etcd discovery (src/negotiator/discovery/etcd.ts) against a real etcd: Debian's etcd-server,
 * started here on loopback with its own data dir and free ports, stopped in afterAll. Three
 * EtcdDiscovery instances converge; records a writer without the key puts (or an old record put
 * back) add no target; a stopped node (lease revoked) and a killed one (lease expires) leave the
 * others' targets; an etcd restart and an outage of AFSTEER_ETCD_OUTAGE_S (default 30) seconds
 * leave every target in place, and afterwards the records are back under live leases and a new
 * node sees the others. Needs no root (loopback only); skipped when there is no etcd binary.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { build } from 'esbuild';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EtcdDiscoveryConfig } from '../../../src/negotiator/daemon-config';
import { EtcdDiscovery } from '../../../src/negotiator/discovery/etcd';
import { decodeRecord, encodeRecord } from '../../../src/negotiator/protocol/record';
import type { Logger } from '../../../src/util/log';
import { ETCD_BIN, EtcdServer, until } from '../../support/etcd';

const ROOT = process.env.AFSTEER_REPO_ROOT ?? join(import.meta.dirname, '..', '..', '..');
const OUTAGE_MS = Number(process.env.AFSTEER_ETCD_OUTAGE_S ?? 30) * 1000;
const TTL_S = 5;
const KILLED_TTL_S = 2;
if (!ETCD_BIN) console.warn('SKIPPED etcd discovery: no etcd binary (apt-get install etcd-server; scripts/setup.sh installs it)');

interface Node {
  name: string;
  d: EtcdDiscovery;
  lines: { level: string; msg: string; at: number }[];
}

describe.skipIf(!ETCD_BIN)('etcd discovery against a real etcd', () => {
  const etcd = new EtcdServer();
  const key = randomBytes(32);
  const prefix = `/afsteer-test-${randomBytes(3).toString('hex')}/nodes/`;
  const nodes: Node[] = [];
  const children: ChildProcess[] = [];
  let admin: Etcd3;
  let cfg: EtcdDiscoveryConfig;

  const rec = (name: string, n: number) => ({
    node: name,
    addresses: { ipv4: `127.0.1.${n}`, ipv6: `2001:db8::${n}` },
    port: 6170 + n,
    families: ['IPv4' as const, 'IPv6' as const],
  });
  const startNode = async (name: string, n: number): Promise<Node> => {
    const lines: Node['lines'] = [];
    const mk = (level: string) => (msg: string) => void lines.push({ level, msg, at: Date.now() });
    const log: Logger = { debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error') };
    const d = new EtcdDiscovery({ config: cfg, key, self: rec(name, n), log, opTimeoutMs: 3000 });
    await d.start();
    const node = { name, d, lines };
    nodes.push(node);
    return node;
  };
  const names = (n: Node) => n.d.targets().map((t) => t.node);
  const others = (n: Node, all: Node[]) =>
    all
      .filter((o) => o !== n)
      .map((o) => o.name)
      .sort();
  const converged = (all: Node[]) => all.every((n) => JSON.stringify(names(n)) === JSON.stringify(others(n, all)));
  const etcdKeys = async () => (await admin.getAll().prefix(prefix).keys()).map((k) => k.slice(prefix.length)).sort();

  beforeAll(async () => {
    await etcd.start();
    cfg = { endpoints: [etcd.url], prefix, leaseTtlS: TTL_S, maxRecordAgeS: 300 };
    admin = new Etcd3({ hosts: etcd.url });
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.d.stop().catch(() => undefined)));
    admin?.close();
    await etcd.destroy();
  });

  it('three nodes converge: each has the other two as targets, with their records', async () => {
    const [a, b, c] = [await startNode('node-a', 1), await startNode('node-b', 2), await startNode('node-c', 3)];
    await until(() => converged([a!, b!, c!]), 5000, 'three nodes to see each other');
    expect(a!.d.targets()).toEqual([rec('node-b', 2), rec('node-c', 3)]);
    expect(await etcdKeys()).toEqual(['node-a', 'node-b', 'node-c']);
    for (const n of nodes) expect(n.d.status()).toMatchObject({ reachable: true, targets: 2, outages: 0 });
  });

  it('a writer without the key adds no target: forged, unsigned and misnamed records are refused and counted', async () => {
    const [a, b, c] = nodes;
    const forger = randomBytes(32);
    const now = { epoch: BigInt(Date.now()), seq: 1n, writtenAt: Date.now() };
    await admin.put(prefix + 'node-x').value(encodeRecord(forger, { ...rec('node-x', 9), ...now }));
    await admin.put(prefix + 'node-y').value(JSON.stringify(rec('node-y', 8)));
    // Signed with the cluster key but stored under another node's name.
    await admin.put(prefix + 'node-z').value(encodeRecord(key, { ...rec('node-q', 7), ...now }));
    // node-a's own record overwritten by a forgery: node-a puts its own back, the others keep it.
    await admin.put(prefix + 'node-a').value(encodeRecord(forger, { ...rec('node-a', 6), ...now }));
    await until(
      () =>
        [b!, c!].every(
          (n) => (n.d.status().refused.mac ?? 0) >= 2 && n.d.status().refused.encoding === 1 && n.d.status().refused.name === 1,
        ),
      5000,
      'the refusals to be counted',
    );
    await until(
      async () => {
        const v = await admin.get(prefix + 'node-a').buffer();
        const r = v && decodeRecord(key, v);
        return typeof r === 'object' && r !== null && r.node === 'node-a' && r.port === 6171;
      },
      5000,
      'node-a to put its own record back',
    );
    expect(a!.d.status().ownRecordRestored).toBeGreaterThanOrEqual(1);
    expect(converged([a!, b!, c!])).toBe(true);
    expect(b!.d.targets()[0]).toEqual(rec('node-a', 1));
    await admin.delete().key(prefix + 'node-x');
    await admin.delete().key(prefix + 'node-y');
    await admin.delete().key(prefix + 'node-z');
  });

  it("a stopped node (lease revoked) and a killed node (lease expired) leave the others' targets", async () => {
    const [a, b, c] = nodes;
    // Killed: a process of its own, SIGKILLed, so nothing revokes its lease.
    const out = join(ROOT, 'build', 'run', 'etcd-node.mjs');
    await build({
      entryPoints: [join(ROOT, 'test', 'fixtures', 'etcd-node.ts')],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      packages: 'external',
      logLevel: 'warning',
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    });
    const child = spawn(
      process.execPath,
      [out, JSON.stringify({ endpoint: etcd.url, prefix, keyHex: key.toString('hex'), node: 'node-d', ttl: KILLED_TTL_S })],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    children.push(child);
    let stdout = '';
    child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    await until(() => stdout.includes('up\n'), 10_000, 'the node-d process to be up');
    await until(() => [a!, b!, c!].every((n) => names(n).includes('node-d')), 5000, 'node-d to be a target');
    child.kill('SIGKILL');
    const killedAt = Date.now();
    await until(
      () => [a!, b!, c!].every((n) => !names(n).includes('node-d')),
      (KILLED_TTL_S + 4) * 1000,
      'node-d to be dropped after its lease expired',
    );
    const tookKilled = Date.now() - killedAt;
    expect(tookKilled).toBeGreaterThan(KILLED_TTL_S * 1000 - 1000);
    // Stopped: the lease is revoked, the others drop it at once.
    const stoppedAt = Date.now();
    await c!.d.stop();
    nodes.splice(nodes.indexOf(c!), 1);
    await until(() => [a!, b!].every((n) => !names(n).includes('node-c')), 2000, 'node-c to be dropped after stop()');
    expect(Date.now() - stoppedAt).toBeLessThan(2000);
    expect(await etcdKeys()).toEqual(['node-a', 'node-b']);
    // node-c comes back (a new boot: a new epoch).
    const c2 = await startNode('node-c', 3);
    await until(() => converged([a!, b!, c2]), 5000, 'node-c to be back');
    console.log(`killed node dropped after ${tookKilled} ms (TTL ${KILLED_TTL_S} s); stopped node after ${Date.now() - stoppedAt} ms`);
  });

  it(`an etcd restart and etcd down for ${OUTAGE_MS / 1000} s leave every target in place; afterwards the records are back under live leases`, async () => {
    const all = [...nodes];
    const oldB = await admin.get(prefix + 'node-b').buffer();
    const violations: string[] = [];
    const sampler = setInterval(() => {
      for (const n of all)
        if (JSON.stringify(names(n)) !== JSON.stringify(others(n, all)))
          violations.push(`${n.name} had ${names(n).join(',')} at ${new Date().toISOString()}`);
    }, 100);
    try {
      // Restart.
      await etcd.stop();
      await etcd.start();
      await until(() => all.every((n) => n.d.status().reachable), 15_000, 'every node to be back after the restart');
      await until(async () => (await etcdKeys()).join() === 'node-a,node-b,node-c', 5000, 'the records after the restart');
      // node-b's record from before the restart, put back: an older (epoch, seq) is a replay.
      await admin.put(prefix + 'node-b').value(oldB!);
      await until(
        () => all.filter((n) => n.name !== 'node-b').every((n) => (n.d.status().refused.replay ?? 0) >= 1),
        5000,
        'the replay to be refused',
      );
      await until(
        async () => (await admin.get(prefix + 'node-b').buffer())?.equals(oldB!) === false,
        5000,
        'node-b to put its record back',
      );

      // Outage.
      const warnsBefore = all.map((n) => n.lines.filter((l) => l.msg.startsWith('etcd unreachable')).length);
      await etcd.stop();
      const downAt = Date.now();
      await until(() => all.every((n) => !n.d.status().reachable), 10_000, 'every node to notice the outage');
      await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - downAt))));
      for (const n of all) expect(n.d.status().reachable).toBe(false);
      await etcd.start();
      const upAt = Date.now();
      await until(() => all.every((n) => n.d.status().reachable), 15_000, 'every node to be back after the outage');
      const back = Date.now() - upAt;
      await until(async () => (await etcdKeys()).join() === 'node-a,node-b,node-c', 5000, 'the records after the outage');
      // One warning per outage, not one per retry.
      all.forEach((n, i) => expect(n.lines.filter((l) => l.msg.startsWith('etcd unreachable')).length - warnsBefore[i]!).toBe(1));
      // The leases are alive (re-granted where an old one was lost): the records outlast a TTL.
      await new Promise((r) => setTimeout(r, (TTL_S + 1) * 1000));
      expect(await etcdKeys()).toEqual(['node-a', 'node-b', 'node-c']);
      console.log(`after ${OUTAGE_MS} ms down, every node was back ${back} ms after etcd was`);
    } finally {
      clearInterval(sampler);
    }
    expect(violations.slice(0, 5)).toEqual([]);
    // A node that starts after all this sees the others, and they see it.
    const e = await startNode('node-e', 5);
    await until(() => converged([...all, e]), 5000, 'node-e and the others to see each other');
  });
});
