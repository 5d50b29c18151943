/**
 * The floor beside the scale targets: what Node's UDP path alone costs at afsteerd's datagram
 * rates. One process, two loopback sockets: `rate` 24-byte datagrams a second sent from one to the
 * other, which sends each straight back (as a peer's reflector would), so this process pays one
 * send and one receive per probe on each side — twice what afsteerd pays for a probe it sends
 * (one send, one receive). Reported: CPU share of one core per 1,000 probes/s, for afsteerd's
 * half. No daemon logic at all: MACs, windows and timers are not in it.
 */
import { createSocket } from 'node:dgram';
import { CLK_TCK, cpuTicks } from './proc-stat';

const ticks = () => cpuTicks('self');

/** CPU share of one core for `rate` probes/s (send + reflect + receive in this process), over seconds. */
export async function udpFloor(rate: number, seconds = 5): Promise<{ rate: number; cpuPct: number; perProbeUs: number; received: number }> {
  const a = createSocket('udp4');
  const b = createSocket('udp4');
  await Promise.all([new Promise<void>((r) => a.bind(0, '127.0.0.1', r)), new Promise<void>((r) => b.bind(0, '127.0.0.1', r))]);
  const bPort = b.address().port;
  let received = 0;
  b.on('message', (m, r) => b.send(m, r.port, r.address));
  a.on('message', () => received++);
  const payload = Buffer.alloc(24, 0x41);
  // Sent in 10 ms ticks, as afsteerd's prober does.
  const perTick = rate / 100;
  let owed = 0;
  const timer = setInterval(() => {
    owed += perTick;
    for (; owed >= 1; owed--) a.send(payload, bPort, '127.0.0.1');
  }, 10);
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = ticks();
  const w0 = performance.now();
  const r0 = received;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu = (ticks() - t0) / CLK_TCK / ((performance.now() - w0) / 1000);
  clearInterval(timer);
  const got = received - r0;
  a.close();
  b.close();
  // Both ends' work is in this process: afsteerd's share (one send, one receive per probe) is half.
  const cpuPct = (cpu * 100) / 2;
  return { rate, cpuPct, perProbeUs: (cpu / 2 / rate) * 1e6, received: got / seconds };
}

// Run directly (node scripts/run-ts.mjs test/bench/udp-floor.ts), not when bundled into another benchmark.
if (/udp-floor\.(ts|mjs)$/.test(process.argv[1] ?? '')) {
  for (const rate of [2000, 20000]) {
    const r = await udpFloor(rate);
    console.log(
      `  floor: ${rate} probes/s → ${r.cpuPct.toFixed(1)}% of a core (${r.perProbeUs.toFixed(1)} µs per probe sent and its return received), ${Math.round(r.received)} returns/s`,
    );
  }
}
