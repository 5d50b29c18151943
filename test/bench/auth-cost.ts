/**
 * Per-datagram authentication cost: today's cluster-key MAC (version-1 frame: encode + decode)
 * against identity frames under pairwise keys (seal + open through trust/frame-auth.ts, keys
 * cached per peer as afsteerd keeps them), in the same run, for a probe (20-byte payload) and a
 * negotiation-sized payload (600 bytes). Target: pairwise ≤ 1.5× the cluster key. Also shown,
 * not targeted: a signed announcement (Ed25519, only to targets whose certificate is not held).
 * Prints one row per payload and PASS/FAIL; exit status 1 when a target is missed.
 */

import { decodeFrame, encodeFrame, type FrameTypeName } from '../../src/negotiator/protocol/frame';
import { CertBook } from '../../src/negotiator/trust/cert-book';
import { FrameAuth } from '../../src/negotiator/trust/frame-auth';
import { testAuthority, testIdentity } from '../support/identities';

const TARGET = 1.5;
const ROUNDS = Number(process.env.BENCH_AUTH_ROUNDS ?? 9);
const N = Number(process.env.BENCH_AUTH_N ?? 20_000);

const authority = testAuthority();
const ida = testIdentity(authority, { node: 'node-a', podCidrs: ['10.1.0.0/24'], addresses: ['192.168.1.2'] });
const idb = testIdentity(authority, { node: 'node-b', podCidrs: ['10.2.0.0/24'], addresses: ['192.168.2.2'] });
const book = (own: typeof ida, peer: typeof ida) => {
  const b = new CertBook(authority.pub, own.cert, Date.now);
  b.install(peer.cert);
  return b;
};
const a = new FrameAuth({ mode: 'identity', node: 'node-a', epoch: 1n, identity: ida, book: book(ida, idb) });
const b = new FrameAuth({ mode: 'identity', node: 'node-b', epoch: 2n, identity: idb, book: book(idb, ida) });
const key = Buffer.alloc(32, 7);

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

/** ns per datagram of fn over n calls. */
function time(fn: () => void, n = N): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

/** Both ways in alternating rounds (a busy machine slows both alike): medians of each and of the per-round ratio. */
function compare(base: () => void, other: () => void): { baseNs: number; otherNs: number; ratio: number } {
  time(base, N / 10);
  time(other, N / 10);
  const b: number[] = [],
    o: number[] = [],
    r: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const x = time(base);
    const y = time(other);
    b.push(x);
    o.push(y);
    r.push(y / x);
  }
  return { baseNs: median(b), otherNs: median(o), ratio: median(r) };
}

let failed = false;
console.log(
  `auth cost per datagram (authenticate + verify), median of ${ROUNDS} alternating rounds × ${N}; target pairwise ≤ ${TARGET}× cluster key`,
);
for (const [what, type, size] of [
  ['probe', 'probe', 20],
  ['negotiate', 'negotiate', 600],
] as [string, FrameTypeName, number][]) {
  const payload = Buffer.alloc(size, 0x61);
  let seq = 0n;
  const {
    baseNs: clusterNs,
    otherNs: pairwiseNs,
    ratio,
  } = compare(
    () => {
      const f = encodeFrame(key, { type, epoch: 1n, seq: ++seq, node: 'node-a', payload });
      if (typeof decodeFrame(key, f) === 'string') throw new Error('cluster-key frame refused');
    },
    () => {
      const f = a.seal(type, ++seq, payload, { node: 'node-b' })!;
      if (typeof b.open(f) === 'string') throw new Error('pairwise frame refused');
    },
  );
  const ok = ratio <= TARGET;
  failed ||= !ok;
  console.log(
    `  ${what.padEnd(10)} ${size} B payload: cluster key ${(clusterNs / 1000).toFixed(2)} µs, pairwise ${(pairwiseNs / 1000).toFixed(2)} µs, ratio ${ratio.toFixed(2)}× ${ok ? 'PASS' : 'FAIL'}`,
  );
}
const announce = Buffer.alloc(400, 0x61);
let s = 0n;
const signedNs = time(() => {
  const f = a.seal('announce', ++s, announce)!;
  if (typeof b.open(f) === 'string') throw new Error('signed announcement refused');
}, 500);
console.log(
  `  (signed announcement with certificate, 400 B: ${(signedNs / 1000).toFixed(1)} µs; only to targets whose certificate is not held)`,
);
process.exit(failed ? 1 : 0);
