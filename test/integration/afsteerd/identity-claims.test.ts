/**
 * Done-when of "a node speaks only for itself": three routed nodes with identities issued by the
 * real `afsteer identity` commands, each certified for its own pod ranges only. Node C, as an
 * attacker with root on it would, rewrites its pod's state file to claim node B's pod IPv4
 * beside its own pod's IPv6, starts first so its claim reaches node A before node B's
 * announcement, and pins a family toward node A (`afsteerd prefer node-a ipv6`). Node A refuses
 * the claim (counted as refused_claim in afsteer_control_datagrams_dropped_total), registers
 * node B's pod for node B, and a 10 MB stream from A's pod to B's pod's IPv4 arrives whole
 * (sha256 equal) at B's pod.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRemotes } from '../../../src/bpf/steering';
import { identityCmd, issueSimIdentities } from '../../support/identities';
import { execFileP } from '../../support/process';
import { AFSTEERD_BIN, nsExec, type SimDaemon, type SimPod, TwoNodes, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

announceSkip('identities: a forged pod claim');

describe.skipIf(!IS_ROOT)('identities: a node claims another node’s pod address', () => {
  let t: TwoNodes;
  let pa: SimPod, pb: SimPod, pc: SimPod;
  let da: SimDaemon, dc: SimDaemon;
  let dirs: Record<string, string>;

  beforeAll(async () => {
    t = new TwoNodes('bridge', 3);
    await t.up();
    pa = await t.addPod(t.a, 'a0');
    pb = await t.addPod(t.b, 'b0');
    pc = await t.addPod(t.c!, 'c0');
    ({ ca, dirs } = await issueSimIdentities(t));
  }, 90_000);
  afterAll(() => t?.cleanup());

  let ca: string;
  const revocations = () => join(t.dir, 'revoked.list');
  const start = (node: typeof t.a) => t.startDaemon(node, { keyFile: undefined, identity: dirs[node.name], revocations: revocations() });

  it("node C's forged claim on B's pod IPv4 is refused and counted; A's stream to B's pod stays whole", async () => {
    // Node C lies: its pod's state file now says its IPv4 is b0's.
    const stateFile = join(t.c!.stateDir, 'attachments', `${pc.id}_eth0.json`);
    const st = JSON.parse(readFileSync(stateFile, 'utf8'));
    st.ipv4 = pb.ipv4;
    writeFileSync(stateFile, JSON.stringify(st));
    dc = await start(t.c!);
    da = await start(t.a);
    await waitFor(async () => (await t.status(da)).counters.drops['claim-outside-cidrs'] > 0, 10_000, "node A refusing C's claim");
    expect(listRemotes(t.a.pinDir).some((r) => r.ipv4 === pb.ipv4)).toBe(false);
    await start(t.b);
    await waitFor(
      async () => (await t.status(da)).peers.length === 2 && listRemotes(t.a.pinDir).some((r) => r.ipv4 === pb.ipv4),
      15_000,
      "node A registering B's pod for B",
    );
    expect(listRemotes(t.a.pinDir).find((r) => r.ipv4 === pb.ipv4)?.ipv6).toBe(pb.ipv6);
    // C pins a family toward A, as in the attack.
    await execFileP(AFSTEERD_BIN, ['prefer', 'node-a', 'ipv6', '--socket', dc.socket], { encoding: 'utf8', timeout: 5000 });
    const { done } = await t.server(pb, pb.ipv4, 6700);
    const client = await t.client(pa, pb.ipv4, 6700, ['--bytes', String(10 * 1024 * 1024), '--chunk', '16384', '--interval-ms', '2']);
    const server = await done;
    expect(server.bytes).toBe(10 * 1024 * 1024);
    expect(server.sha256).toBe(client.sha256);
    const sa = await t.status(da);
    const pair = sa.pairs.find((p: any) => p.remote === `${pb.id}`) ?? sa.pairs.find((p: any) => p.peer === 'node-b');
    expect(pair?.peer).toBe('node-b');
    expect(sa.pairs.every((p: any) => p.peer !== 'node-c' || p.remote !== pair?.remote)).toBe(true);
    expect(sa.identity).toMatchObject({ mode: 'identity', certifiedPeers: 2 });
    // The refusal is a reason of afsteer_control_datagrams_dropped_total.
    const metrics = await nsExec(t.a.nsPath, ['curl', '-sf', 'http://127.0.0.1:9617/metrics']);
    const m = /afsteer_control_datagrams_dropped_total\{reason="refused_claim"\} (\d+)/.exec(metrics);
    expect(Number(m?.[1])).toBeGreaterThan(0);
    expect(da.logs.some((l) => l.msg === 'pod claim refused' && l.peer === 'node-c')).toBe(true);
  }, 90_000);

  it('the authority revokes node C: A drops it and unregisters its pod within one announcement refresh; its datagrams are refused', async () => {
    expect(listRemotes(t.a.pinDir).some((r) => r.ipv6 === pc.ipv6)).toBe(false); // its forged pod was never registered
    // C announces an honest pod again, which A registers.
    const stateFile = join(t.c!.stateDir, 'attachments', `${pc.id}_eth0.json`);
    writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(readFileSync(stateFile, 'utf8')), ipv4: pc.ipv4 }));
    await waitFor(() => listRemotes(t.a.pinDir).some((r) => r.ipv6 === pc.ipv6), 10_000, "A registering C's honest pod");
    await identityCmd(['revoke', '--authority', ca, '--node', 'node-c', '--out', revocations()]);
    const at = Date.now();
    // peerTimeoutMs 3000 in these daemons: the refresh is a quarter of it.
    await waitFor(() => !listRemotes(t.a.pinDir).some((r) => r.ipv6 === pc.ipv6), 750 + 1500, "C's pod unregistered on A");
    const took = Date.now() - at;
    const s = await t.status(da);
    expect(s.peers.map((p: any) => p.node)).toEqual(['node-b']);
    expect(s.identity.revoked).toBe(1);
    await waitFor(async () => (await t.status(da)).counters.drops.revoked > 0, 5000, "C's datagrams refused as revoked");
    expect(da.logs.some((l) => l.msg === 'peer dropped' && l.peer === 'node-c')).toBe(true);
    expect(took).toBeLessThan(2250);
  }, 30_000);
});
