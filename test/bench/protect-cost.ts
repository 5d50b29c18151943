/**
 * Per-packet cost of a protected pair's dedup check (root, BPF_PROG_TEST_RUN on afsteer_to_pod),
 * next to afsteer's decapsulation of an unprotected tunnel packet in the same run: each timed one
 * call at a time (a decapsulation rewrites the skb the kernel's repeat loop would reuse), medians
 * of interleaved rounds. Reported: unmarked decap, marked copy delivered (window check + decap),
 * marked copy dropped as a duplicate, and the ratio of the check to the decapsulation.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { putEndpoint } from '../../src/bpf/endpoint-map';
import { closeFds } from '../../src/bpf/libbpf';
import { ensurePrograms } from '../../src/bpf/programs';
import { setProtection } from '../../src/bpf/protection';
import { registerRemote, setSteering } from '../../src/bpf/steering';
import { progTestRun } from '../../src/bpf/test-run';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const A = { ipv4: '10.62.0.1', ipv6: 'fd62::1' },
  B = { ipv4: '10.62.0.2', ipv6: 'fd62::2' };
const pin = `/sys/fs/bpf/afsteer-protect-bench-${randomBytes(4).toString('hex')}`;

function ip4(src: string, dst: string, proto: number, id: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h.writeUInt16BE(id, 4);
  h.writeUInt16BE(0x4000, 6);
  h[8] = 64;
  h[9] = proto;
  Buffer.from(src.split('.').map(Number)).copy(h, 12);
  Buffer.from(dst.split('.').map(Number)).copy(h, 16);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += h.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  h.writeUInt16BE(~s & 0xffff, 10);
  return Buffer.concat([h, payload]);
}
function ip6(src: string, dst: string, nh: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0);
  h.writeUInt16BE(payload.length, 4);
  h[6] = nh;
  h[7] = 64;
  const v6 = (a: string) => {
    const b = Buffer.alloc(16);
    b.writeUInt16BE(0xfd62, 0);
    b[15] = Number(a.split('::')[1]);
    return b;
  };
  v6(src).copy(h, 8);
  v6(dst).copy(h, 24);
  return Buffer.concat([h, payload]);
}
const eth = (type: number, l3: Buffer) =>
  Buffer.concat([Buffer.from('02a0f50000fe02a0f5000001', 'hex'), Buffer.from([type >> 8, type & 0xff]), l3]);

const fds = ensurePrograms(pin);
try {
  putEndpoint(pin, 1, { ...B, podIfindex: 2 });
  registerRemote(pin, A);
  setSteering(pin, 1, A.ipv6, 'native', 1);
  setProtection(pin, 1, A.ipv6, 'dedup');
  const inner6 = ip6(A.ipv6, B.ipv6, 17, Buffer.alloc(1000));
  const inner4 = ip4(A.ipv4, B.ipv4, 17, 0, Buffer.alloc(1000));
  const unmarked = eth(0x0800, ip4(A.ipv4, B.ipv4, 41, 0, inner6));
  const marked = (seq: number) => eth(0x0800, ip4(A.ipv4, B.ipv4, 4, 0x8000 | seq, inner4));
  const rounds = { decap: [] as number[], first: [] as number[], dup: [] as number[] };
  let seq = 0;
  for (let r = 0; r < 4000; r++) {
    rounds.decap.push(progTestRun(fds.toPod, unmarked).durationNs);
    const f = marked(seq++ & 0x7fff);
    rounds.first.push(progTestRun(fds.toPod, f).durationNs);
    rounds.dup.push(progTestRun(fds.toPod, f).durationNs);
  }
  const d = median(rounds.decap),
    f = median(rounds.first),
    u = median(rounds.dup);
  console.log('dedup check per packet (BPF_PROG_TEST_RUN, afsteer_to_pod, one call per run, median of 4000):');
  console.log(`  unprotected decapsulation (IPv6-in-IPv4)     ${d} ns`);
  console.log(`  protected copy delivered (check + decap)      ${f} ns   (check ≈ ${f - d} ns, ${(f / d).toFixed(2)}× decapsulation)`);
  console.log(`  protected copy dropped as duplicate           ${u} ns   (${(u / d).toFixed(2)}× decapsulation)`);
} finally {
  closeFds(fds.fromPod, fds.toPod, fds.bridgeOut);
  rmSync(pin, { recursive: true, force: true });
}
