/**
 * afsteerd discovery by multicast on a shared segment: three node namespaces on one bridge, no
 * static peers; each daemon announces its pods (state files in the plugin's format) over IPv4
 * and IPv6 multicast, and the others register them as remotes in their own pinned maps.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRemotes } from '../../../src/bpf/steering';
import { AFSTEERD_BIN, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT, sh, shQuiet } from '../../support/world';

const execFileP = promisify(execFile);
announceSkip('afsteerd multicast discovery');

describe.skipIf(!IS_ROOT)('afsteerd multicast discovery on a shared segment', () => {
  const id = randomBytes(2).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), `afsteer-mc-${id}-`));
  const seg = `af${id}seg`;
  const nodes = [1, 2, 3].map((n) => ({
    n,
    name: `mc-${n}`,
    ns: `af${id}mc${n}`,
    pinDir: `/sys/fs/bpf/afsteer-mc-${id}-${n}`,
    stateDir: join(dir, `state-${n}`),
    socket: join(dir, `d${n}.sock`),
    ipv4: `192.168.77.${n}`,
    ipv6: `fd77::${n}`,
    pod: { ipv4: `10.7${n}.0.2`, ipv6: `fd00:7${n}::2` },
  }));
  const children: ChildProcess[] = [];
  const namespaces: string[] = [];
  const status = async (socket: string) =>
    JSON.parse((await execFileP(AFSTEERD_BIN, ['status', '--json', '--socket', socket], { encoding: 'utf8' })).stdout);

  beforeAll(async () => {
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    sh('ip', ['netns', 'add', seg]);
    namespaces.push(seg);
    sh('ip', ['-n', seg, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', seg, 'link', 'set', 'br0', 'up']);
    for (const n of nodes) {
      sh('ip', ['netns', 'add', n.ns]);
      namespaces.push(n.ns);
      sh('ip', ['link', 'add', `af${id}x${n.n}`, 'netns', n.ns, 'type', 'veth', 'peer', 'name', `af${id}y${n.n}`, 'netns', seg]);
      sh('ip', ['-n', n.ns, 'link', 'set', `af${id}x${n.n}`, 'name', 'seg0']);
      sh('ip', ['-n', n.ns, 'link', 'set', 'lo', 'up']);
      sh('ip', ['-n', n.ns, 'link', 'set', 'seg0', 'up']);
      sh('ip', ['-n', n.ns, 'addr', 'add', `${n.ipv4}/24`, 'dev', 'seg0']);
      sh('ip', ['-n', n.ns, 'addr', 'add', `${n.ipv6}/64`, 'dev', 'seg0', 'nodad']);
      sh('ip', ['-n', seg, 'link', 'set', `af${id}y${n.n}`, 'master', 'br0', 'up']);
      // One pod per node, recorded the way the plugin records it.
      mkdirSync(join(n.stateDir, 'attachments'), { recursive: true, mode: 0o700 });
      writeFileSync(
        join(n.stateDir, 'attachments', `ctr-${n.n}_eth0.json`),
        JSON.stringify({
          containerId: `ctr-${n.n}`,
          ifname: 'eth0',
          netns: `/run/netns/pod${n.n}`,
          network: 'mc',
          hostIfindex: 1000 + n.n,
          hostIfname: `veth${n.n}`,
          podIfindex: 2,
          ipv4: n.pod.ipv4,
          ipv6: n.pod.ipv6,
          podNamespace: 'cnf',
          podName: `pod-${n.n}`,
          createdClsact: true,
          progDir: '/x',
          addedAddresses: [],
          delegatedIpam: false,
          mtu: { before: 1500, after: 1460 },
          createdAt: new Date().toISOString(),
        }),
      );
      const config = join(dir, `d${n.n}.json`);
      writeFileSync(
        config,
        JSON.stringify({
          nodeName: n.name,
          pinDir: n.pinDir,
          stateDir: n.stateDir,
          controlSocket: n.socket,
          keyFile,
          addresses: { ipv4: n.ipv4, ipv6: n.ipv6 },
          discovery: { multicast: {} },
          timers: { announceIntervalMs: 200, peerTimeoutMs: 3000, remoteRetentionMs: 1000 },
        }),
      );
      const child = spawn('nsenter', [`--net=/run/netns/${n.ns}`, AFSTEERD_BIN, 'run', '--config', config], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr!.resume();
      children.push(child);
    }
  }, 60_000);

  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    for (const ns of namespaces) shQuiet('ip', ['netns', 'del', ns]);
    for (const n of nodes) rmSync(n.pinDir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('every daemon finds the other two on both families and registers their pods as remotes', async () => {
    await waitFor(
      async () => {
        for (const n of nodes) {
          try {
            const s = await status(n.socket);
            if (s.peers.length !== 2 || s.peers.some((p: any) => p.endpoints !== 1)) return false;
          } catch {
            return false;
          }
        }
        return true;
      },
      15_000,
      'three daemons converged',
    );
    for (const n of nodes) {
      const s = await status(n.socket);
      expect(s.peers.map((p: any) => p.node).sort()).toEqual(nodes.filter((o) => o !== n).map((o) => o.name));
      for (const p of s.peers)
        expect(p.addresses).toEqual({ ipv4: nodes.find((o) => o.name === p.node)!.ipv4, ipv6: nodes.find((o) => o.name === p.node)!.ipv6 });
      const remotes = listRemotes(n.pinDir)
        .map((r) => r.ipv4)
        .sort();
      expect(remotes).toEqual(nodes.filter((o) => o !== n).map((o) => o.pod.ipv4));
    }
    // Both families carry the announcements: each node has heard each peer over each.
    await waitFor(
      async () => {
        const s = await status(nodes[0]!.socket);
        return s.peers.every((p: any) => p.families.IPv4?.lastHeardMsAgo !== null && p.families.IPv6?.lastHeardMsAgo !== null);
      },
      5000,
      'heard on both families',
    );
  }, 30_000);

  it('a node that leaves the segment ages out: its pods are unregistered on the others', async () => {
    children[2]!.kill('SIGKILL');
    await waitFor(
      () => listRemotes(nodes[0]!.pinDir).length === 1 && listRemotes(nodes[1]!.pinDir).length === 1,
      10_000,
      'node 3 aged out',
    );
    expect((await status(nodes[0]!.socket)).peers.map((p: any) => p.node)).toEqual(['mc-2']);
  }, 20_000);
});
