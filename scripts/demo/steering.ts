/**
 * Demo part 2 (run by scripts/demo.sh): two simulated nodes, one pod each, brought up through
 * bridge + host-local + afsteer with libcni; an IPv4 TCP stream runs from pod a0 to pod b0 while
 * the operator command `afsteer steer set` flips the pair between native IPv4 and IPv4-in-IPv6.
 * Every interval prints the packets the middle router forwarded per family: the stream's packets
 * move from one family to the other and back, and the stream never breaks.
 */
import { type SimPod, TwoNodes } from '../../test/support/two-nodes';

const INTERVAL_MS = 1500;
const FLIPS = 6;

const t = new TwoNodes('bridge');
const say = (s: string) => console.log(`\n\x1b[1m== ${s}\x1b[0m`);
try {
  await t.up();
  const a0 = await t.addPod(t.a, 'a0');
  const b0 = await t.addPod(t.b, 'b0');
  say(`pods: a0 ${a0.ipv4} ${a0.ipv6} on node A, b0 ${b0.ipv4} ${b0.ipv6} on node B`);

  say('register each pod as a remote on the other node (afsteer steer remote add)');
  process.stdout.write(await t.steerCmd(t.a, ['remote', 'add', b0.ipv4, b0.ipv6]));
  process.stdout.write(await t.steerCmd(t.b, ['remote', 'add', a0.ipv4, a0.ipv6]));

  const steer = async (wire: 'ipv6' | 'native') => {
    const set = (n: typeof t.a, local: SimPod, remote: SimPod) => t.steerCmd(n, ['set', local.ipv4, remote.ipv4, wire]);
    process.stdout.write(`  node A: ${await set(t.a, a0, b0)}  node B: ${await set(t.b, b0, a0)}`);
  };

  say(`IPv4 TCP stream a0 -> b0 (echoed back), flipping the wire family every ${INTERVAL_MS} ms`);
  const { done } = await t.server(b0, b0.ipv4, 7000, true);
  const client = t.client(a0, b0.ipv4, 7000, [
    '--duration-ms',
    String(INTERVAL_MS * (FLIPS + 1) - 300),
    '--chunk',
    '16384',
    '--interval-ms',
    '2',
    '--echo',
  ]);
  let before = await t.midCounts();
  for (let i = 0; i <= FLIPS; i++) {
    const wire = i % 2 === 0 ? 'native' : 'ipv6';
    await steer(wire);
    await new Promise((r) => setTimeout(r, INTERVAL_MS));
    const now = await t.midCounts();
    console.log(
      `  ${wire === 'native' ? 'native IPv4       ' : 'steered IPv4-in-v6'}  middle forwarded: IPv4 ${String(now.ipv4 - before.ipv4).padStart(6)} pkts   IPv6 ${String(now.ipv6 - before.ipv6).padStart(6)} pkts`,
    );
    before = now;
  }
  const c = await client;
  const s = await done;
  say('stream result');
  console.log(
    `  client sent ${c.bytes} bytes, sha256 ${String(c.sha256).slice(0, 16)}…; echo ${c.echoSha256 === c.sha256 ? 'identical' : 'DIFFERENT'}`,
  );
  console.log(
    `  server got  ${s.bytes} bytes, sha256 ${String(s.sha256).slice(0, 16)}…; ${s.sha256 === c.sha256 ? 'identical' : 'DIFFERENT'}; the server socket saw ${s.family} from ${s.peer}`,
  );
  say('afsteer steer show (node A)');
  process.stdout.write(await t.steerCmd(t.a, ['show']));
  if (c.sha256 !== s.sha256 || c.echoSha256 !== c.sha256) process.exitCode = 1;
} finally {
  t.cleanup();
}
