/**
 * afsteerd's batched UDP transport (src/negotiator/transport/batched-udp.ts over src/native/mmsg.ts)
 * on real loopback sockets: what one turn sends leaves in one sendmmsg per 1,024 datagrams, every
 * datagram arrives once with its source, each with how long ago the kernel received it (the wait
 * for the poll never enters an RTT), oversized datagrams are handed over for the receive path to
 * drop, and refused sends are counted.
 */
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_DATAGRAM } from '../../../src/negotiator/protocol/frame';
import { BatchedUdpTransport } from '../../../src/negotiator/transport/batched-udp';
import type { Source } from '../../../src/negotiator/transport/udp';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const open: BatchedUdpTransport[] = [];
afterEach(() => {
  for (const t of open.splice(0)) t.close();
});

/** A started transport on port of 127.0.0.1 and ::1, collecting what it receives. */
async function transport(port: number): Promise<{ t: BatchedUdpTransport; got: { b: Buffer; src: Source; agoMs: number }[] }> {
  const t = new BatchedUdpTransport(port);
  open.push(t);
  const got: { b: Buffer; src: Source; agoMs: number }[] = [];
  await t.start({ ipv4: '127.0.0.1', ipv6: '::1' }, undefined, (b, src, agoMs) => got.push({ b: Buffer.from(b), src, agoMs: agoMs ?? 0 }));
  return { t, got };
}

describe('batched UDP transport', () => {
  it('3,000 datagrams sent in one turn leave in 6 sendmmsg calls per family (512 a batch) and all arrive once, with their source', async () => {
    const a = await transport(16170);
    const b = await transport(16180);
    for (let i = 0; i < 3000; i++) {
      a.t.send(4, '127.0.0.1', 16180, Buffer.from(`four ${i}`));
      a.t.send(6, '::1', 16180, Buffer.from(`six ${i}`));
    }
    await sleep(20);
    expect(a.t.stats.sent).toBe(6000);
    expect(a.t.stats.sendCalls).toBe(12);
    b.t.poll();
    expect(b.got).toHaveLength(6000);
    const four = b.got.filter((g) => g.src.family === 4);
    expect(new Set(four.map((g) => g.b.toString())).size).toBe(3000);
    expect(four[0]!.src).toEqual({ family: 4, address: '127.0.0.1', port: 16170 });
    expect(b.got.find((g) => g.src.family === 6)!.src).toEqual({ family: 6, address: '::1', port: 16170 });
    // 6,000 datagrams in a few recvmmsg bursts of 256, not one wakeup each.
    expect(b.t.stats.recvCalls).toBeLessThan(40);
  });

  it('a datagram taken late says how long ago it came: the wait for the poll is not part of an RTT', async () => {
    const a = await transport(16171);
    const b = await transport(16181);
    a.t.send(4, '127.0.0.1', 16181, Buffer.from('early'));
    await sleep(80);
    a.t.send(4, '127.0.0.1', 16181, Buffer.from('late'));
    await sleep(5);
    b.t.poll();
    const ago = Object.fromEntries(b.got.map((g) => [g.b.toString(), g.agoMs]));
    expect(ago.early).toBeGreaterThanOrEqual(70);
    expect(ago.late).toBeLessThan(ago.early! - 50);
    expect(ago.late).toBeGreaterThanOrEqual(0);
  });

  it('a burst handled slowly: each datagram’s age counts the time spent on the ones before it (arrival times stay together)', async () => {
    const a = await transport(16172);
    const b = new BatchedUdpTransport(16183);
    open.push(b);
    const arrivals: number[] = [];
    await b.start({ ipv4: '127.0.0.1' }, undefined, (_b, _src, agoMs) => {
      arrivals.push(performance.now() - (agoMs ?? 0));
      const until = performance.now() + 2;
      while (performance.now() < until) {
        // the daemon busy with the datagram before the next
      }
    });
    for (let i = 0; i < 20; i++) a.t.send(4, '127.0.0.1', 16183, Buffer.from(`burst ${i}`));
    await sleep(20);
    b.poll();
    expect(arrivals).toHaveLength(20);
    // 20 datagrams × 2 ms of handling: without the correction the last would look 38 ms later than the first.
    expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeLessThan(5);
  });

  it('an oversized datagram is handed over longer than any frame (the receive path drops it); a refused send is counted', async () => {
    const b = await transport(16182);
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    s.send(Buffer.alloc(1500, 7), 16182, '127.0.0.1');
    await sleep(20);
    s.close();
    b.t.poll();
    expect(b.got).toHaveLength(1);
    expect(b.got[0]!.b.length).toBeGreaterThan(MAX_DATAGRAM);
    // Port 0: the kernel refuses it (EINVAL); the next datagram still goes.
    b.t.send(4, '127.0.0.1', 0, Buffer.from('refused'));
    b.t.send(4, '127.0.0.1', 16182, Buffer.from('fine'));
    b.t.send(4, 'not-an-address', 16182, Buffer.from('unparsable'));
    await sleep(20);
    expect(b.t.sendErrors[4]).toBe(2);
    b.t.poll();
    expect(b.got.map((g) => g.b.toString()).at(-1)).toBe('fine');
  });
});
