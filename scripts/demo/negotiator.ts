/**
 * Demo part 3 (run by scripts/demo.sh): afsteerd does it by itself. Two simulated nodes, one pod
 * each through the real chain; both daemons started from their config files; discovery and the
 * pair negotiated when the pods start talking (afsteerd status); a live TCP stream; the family it
 * is on blackholed in the middle router: the switch and its reason as they happen, the middle
 * router's per-family counters moving, the stream intact; the family restored: held down, then
 * back to native (lowest-latency: neither family wins by the margin).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listPairs } from '../../src/bpf/steering';
import { withPage } from '../../test/support/netns-tools';
import { AFSTEERD_BIN, type SimDaemon, TwoNodes, waitFor } from '../../test/support/two-nodes';

/** The daemon's page (http://127.0.0.1:9617/ in node-a's namespace) in headless Chromium, saved as build/demo-peers.png. */
async function savePage(d: SimDaemon): Promise<void> {
  const png = join(process.cwd(), 'build', 'demo-peers.png');
  try {
    await sleep(1500);
    await withPage(t.dir, d.node.nsPath, 'http://127.0.0.1:9617/', 'svg.chart g.switch', '1', png);
    say(`node-a's page (one chart per peer: RTT and loss of both families, the switch and its reason) saved: build/demo-peers.png`);
  } catch (err) {
    console.log(`  (page not saved: ${(err as Error).message.split('\n')[0]})`);
  }
}

const t = new TwoNodes('bridge');
const say = (s: string) => console.log(`\n\x1b[1m== ${s}\x1b[0m`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const status = (d: SimDaemon) => execFileSync(AFSTEERD_BIN, ['status', '--socket', d.socket], { encoding: 'utf8' });
const clock = () => new Date().toISOString().slice(11, 23);

try {
  await t.up();
  const a0 = await t.addPod(t.a, 'a0');
  const b0 = await t.addPod(t.b, 'b0');
  say(`pods: a0 ${a0.ipv4} ${a0.ipv6} on node-a, b0 ${b0.ipv4} ${b0.ipv6} on node-b`);

  const da = await t.startDaemon(t.a);
  const db = await t.startDaemon(t.b);
  say(`afsteerd on node-a, from ${da.config}`);
  console.log(readFileSync(da.config, 'utf8'));
  // Every switch either daemon logs, printed as it happens.
  const seen = new Map<SimDaemon, number>();
  const follow = setInterval(() => {
    for (const [d, n] of [
      [da, 'node-a'],
      [db, 'node-b'],
    ] as const) {
      const lines = d.logs.filter((l) => l.msg === 'switch' || l.msg === 'blackhole' || l.msg === 'path recovered');
      for (const l of lines.slice(seen.get(d) ?? 0))
        console.log(
          `  ${String(l.ts).slice(11, 23)}  ${n}: ${l.msg}${l.msg === 'switch' ? ` ${l.pair} ${l.from} -> ${l.to} (${l.reason})` : ` ${l.family}`}`,
        );
      seen.set(d, lines.length);
    }
  }, 50);

  await waitFor(
    () => da.logs.some((l) => l.msg === 'peer discovered') && db.logs.some((l) => l.msg === 'peer discovered'),
    5000,
    'discovery',
  );
  await sleep(1500);
  say('discovery: each node knows the other and its pod; no pair yet (pairs are negotiated when pods talk)');
  process.stdout.write(status(da));

  say('IPv4 TCP stream a0 -> b0 (paced, 7 s); the pair is negotiated on its first packet');
  const { done } = await t.server(b0, b0.ipv4, 7100);
  const client = t.client(a0, b0.ipv4, 7100, ['--duration-ms', '7000', '--chunk', '16384', '--interval-ms', '5']);
  await sleep(1500);
  process.stdout.write(status(da).split('\npairs:')[1]!.split('\nlast switches')[0]!.replace(/^/, 'pairs:'));

  let before = await t.midCounts();
  const counts = async (label: string) => {
    const now = await t.midCounts();
    console.log(
      `  ${clock()}  ${label.padEnd(28)} middle forwarded: IPv4 ${String(now.ipv4 - before.ipv4).padStart(6)} pkts   IPv6 ${String(now.ipv6 - before.ipv6).padStart(6)} pkts`,
    );
    before = now;
  };
  await sleep(1000);
  await counts('native, before the blackhole');
  say('blackhole IPv4 in the middle router (nftables drop)');
  console.log(`  ${clock()}  IPv4 blackholed`);
  await t.impair(4, 'blackhole');
  await sleep(1500);
  await counts('after the blackhole');
  const wires = () =>
    listPairs(t.a.pinDir)
      .map((p) => p.wire)
      .join(',') +
    ' / ' +
    listPairs(t.b.pinDir)
      .map((p) => p.wire)
      .join(',');
  console.log(`  wire family in the maps (node-a / node-b): ${wires()}`);
  await savePage(da);
  const c = await client;
  const s = await done;
  say('stream result');
  console.log(
    `  sent ${c.bytes} bytes, received ${s.bytes}; sha256 ${s.sha256 === c.sha256 ? 'identical' : 'DIFFERENT'}; longest receive stall ${s.maxGapMs} ms (Linux's minimum TCP retransmission timeout is 200 ms)`,
  );

  say('restore IPv4: the family is held down, then the pair goes back to native');
  await t.impair(4, null);
  console.log(`  ${clock()}  IPv4 restored`);
  const keep = t.inPod(a0, ['ping', '-q', '-c', '80', '-i', '0.1', '-W', '1', b0.ipv4]).catch(() => '');
  await waitFor(
    () => listPairs(t.a.pinDir).every((p) => p.wire === 'native') && listPairs(t.b.pinDir).every((p) => p.wire === 'native'),
    15_000,
    'back to native',
  );
  await sleep(300);
  console.log(`  wire family in the maps (node-a / node-b): ${wires()}`);
  say('afsteerd status (node-a)');
  process.stdout.write(status(da));
  clearInterval(follow);
  await keep;
  if (c.sha256 !== s.sha256) process.exitCode = 1;
} finally {
  t.cleanup();
}
