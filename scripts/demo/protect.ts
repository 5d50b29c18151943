/**
 * Demo part 4 (run by scripts/demo.sh): a protected pair. Two simulated nodes with afsteerd, two
 * pod pairs: a0→b0 unprotected, a1→b1 with AFSTEER_PROTECT=always. Each pair in turn carries a
 * paced TCP stream and 10,000 numbered UDP datagrams/s while the family it uses is blackholed in
 * the middle router: the unprotected pair stalls for its switch and the TCP retransmission
 * timeout and loses the datagrams in flight; the protected one stalls not at all and loses none.
 */
import { execFileSync } from 'node:child_process';
import { crossBlackhole } from '../../test/support/protect-streams';
import { AFSTEERD_BIN, type SimDaemon, TwoNodes, waitFor } from '../../test/support/two-nodes';

const t = new TwoNodes('bridge');
const say = (s: string) => console.log(`\n\x1b[1m== ${s}\x1b[0m`);
const status = (d: SimDaemon) => execFileSync(AFSTEERD_BIN, ['status', '--socket', d.socket], { encoding: 'utf8' });

try {
  await t.up();
  const a0 = await t.addPod(t.a, 'a0');
  const b0 = await t.addPod(t.b, 'b0');
  const a1 = await t.addPod(t.a, 'a1', 'IgnoreUnknown=1;AFSTEER_PROTECT=always');
  const b1 = await t.addPod(t.b, 'b1');
  say('pods: a0 -> b0 unprotected; a1 -> b1 with CNI_ARGS AFSTEER_PROTECT=always');
  const da = await t.startDaemon(t.a);
  const db = await t.startDaemon(t.b);
  for (const [x, y] of [
    [a0, b0],
    [a1, b1],
  ] as const)
    await t.inPod(x, ['ping', '-c', '2', '-i', '0.1', '-W', '1', y.ipv4]);
  const pairOf = async (local: string) => ((await t.status(da)).pairs as any[]).find((p) => p.local === local);
  await waitFor(async () => (await pairOf(a1.id))?.protection.duplicating === true, 10_000, 'protected pair duplicating');
  say('afsteerd status (node-a): PROTECT "always dup" = both copies sent, the peer confirmed its dedup window');
  process.stdout.write(status(da));
  void db;
  let port = 7200;
  for (const [name, x, y] of [
    ['unprotected a0 -> b0', a0, b0],
    ['protected   a1 -> b1', a1, b1],
  ] as const) {
    say(`${name}: TCP (8 KB every 5 ms) + 10,000 UDP datagrams/s for 4 s over IPv4; IPv4 blackholed 1.5 s in`);
    await waitFor(async () => (await t.status(da)).peers[0]?.families?.IPv4?.state === 'up', 20_000, 'IPv4 up');
    await new Promise((r) => setTimeout(r, 1500));
    const r = await crossBlackhole(t, x, y, 4, { port: (port += 2) });
    console.log(`  TCP: longest receive stall ${r.tcp.stallMs} ms, sha256 ${r.tcp.intact ? 'identical' : 'DIFFERENT'}`);
    console.log(
      `  UDP: ${r.udp.sent} sent, ${r.udp.unique} delivered, ${r.udp.lost} lost, ${r.udp.duplicated} delivered twice; longest gap ${r.udp.stallMs} ms`,
    );
    if (!r.tcp.intact) process.exitCode = 1;
  }
  say('afsteerd status (node-a) after both');
  process.stdout.write(status(da));
} finally {
  t.cleanup();
}
