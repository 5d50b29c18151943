/**
 * A node speaks only for itself, with real daemons in one process (memory-cluster.ts): three
 * nodes with identities converge and negotiate over pairwise keys; then each hostile frame —
 * a certificate of another authority, an expired one, one whose name differs from the frame's,
 * a pod outside the certified CIDRs, a claim on another node's pod address, a truncated or
 * oversized certificate, a replay under a pairwise key, a revoked node's frame — is refused and
 * counted, with nothing registered and nothing written to the maps. The attacker is node 3
 * itself where it can be (root on node 3: its own key and certificate), else a forger.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NodeIdentity } from '../../../src/identity/identity-files';
import { signRevocations, verifyRevocations } from '../../../src/identity/revocation';
import { encodeIdentityFrame } from '../../../src/negotiator/protocol/identity-frame';
import type { Announce } from '../../../src/negotiator/protocol/messages';
import { CertBook } from '../../../src/negotiator/trust/cert-book';
import { FrameAuth } from '../../../src/negotiator/trust/frame-auth';
import { configureLog } from '../../../src/util/log';
import { testAuthority, testIdentity } from '../../support/identities';
import { MemoryCluster, type MemoryNode } from '../../support/memory-cluster';
import type { MemoryTransport } from '../../support/memory-net';

beforeAll(() => configureLog({ level: 'error' }));

let cluster: MemoryCluster | undefined;
afterEach(() => {
  cluster?.stop();
  cluster = undefined;
});

/** Three identity nodes, converged. */
async function converged(): Promise<{ c: MemoryCluster; n1: MemoryNode; n2: MemoryNode; n3: MemoryNode }> {
  const c = (cluster = new MemoryCluster(3, {}, [], { auth: 'identity' }));
  await c.start();
  c.clock.advance(2000);
  const [n1, n2, n3] = c.nodes as [MemoryNode, MemoryNode, MemoryNode];
  return { c, n1, n2, n3 };
}

/** What a node's maps and registry hold now (to compare before and after an attack). */
function mapsOf(n: MemoryNode) {
  return {
    remotes: n.writer
      .listRemotes()
      .map((r) => `${r.ipv4}|${r.ipv6}`)
      .sort(),
    peers: n.daemon
      .status()
      .peers.map((p) => `${p.node}:${p.endpoints}`)
      .sort(),
  };
}

/** An attacker's way into the network: a transport bound on addresses (a node's, when it is that node lying). */
async function attacker(c: MemoryCluster, addresses: { ipv4: string; ipv6: string }, port = 7000): Promise<MemoryTransport> {
  const t = c.net.transport(port);
  await t.start(addresses, undefined, () => {});
  return t;
}

/** A sealer for frames named node, authenticated with identity, holding the certificates of targets (so it can MAC pairwise to them). */
function sealer(node: string, identity: NodeIdentity, targets: NodeIdentity[], epoch = 99n): FrameAuth {
  const book = new CertBook(identity.authority, identity.cert, () => Date.now());
  for (const t of targets) book.install(t.cert);
  return new FrameAuth({ mode: 'identity', node, epoch, identity, book });
}

/** An announcement payload of node at addresses with pods. */
function announce(addresses: { ipv4: string; ipv6: string }, pods: { cnf: string; ipv4: string; ipv6: string }[], gen = 1): Buffer {
  const a: Announce = {
    addresses,
    port: 6170,
    supported_families: ['IPv4', 'IPv6'],
    capabilities: ['identity-v1'],
    gen,
    part: 0,
    parts: 1,
    endpoints: pods,
  };
  return Buffer.from(JSON.stringify(a));
}

describe('identities between daemons in one process', () => {
  it('three identity nodes converge: peers on both families, pods registered, a pair negotiated, no drop', async () => {
    const { c, n1, n2 } = await converged();
    for (const n of c.nodes) {
      expect(n.daemon.status().peers).toHaveLength(2);
      expect(n.writer.listRemotes()).toHaveLength(2);
      expect(n.daemon.counters.drops).toEqual({});
      expect(n.daemon.status().identity).toMatchObject({ mode: 'identity', certifiedPeers: 2, own: { node: n.name } });
    }
    c.firstPacket(n1, n2);
    expect(c.clock.advanceUntil(() => c.wire(n1, n2) === 'native' && c.wire(n2, n1) === 'native', 5000)).toBeDefined();
  });

  it("node 3 (its own valid certificate) claims node 2's pod IPv4 beside its own pod's IPv6: refused, counted, nothing registered", async () => {
    const { c, n1, n2, n3 } = await converged();
    const before = mapsOf(n1);
    const t = await attacker(c, n3.addresses);
    const s = sealer('node-3', n3.identity!, [n1.identity!]);
    const own = { cnf: 'ns/pod-3', ipv4: n3.pod.ipv4, ipv6: n3.pod.ipv6 };
    const forged = { cnf: 'ns/evil', ipv4: n2.pod.ipv4, ipv6: 'fd00:244:3::9' };
    t.send(4, n1.addresses.ipv4, 6170, s.seal('announce', 1n, announce(n3.addresses, [own, forged], 77), { node: 'node-1' })!);
    c.clock.advance(10);
    expect(n1.daemon.counters.drops['claim-outside-cidrs']).toBe(1);
    expect(n1.writer.remoteByAddress(n2.pod.ipv4)?.ipv6).toBe(n2.pod.ipv6);
    expect(mapsOf(n1).remotes).toEqual(before.remotes);
    // Nor with node 3's own pod addresses swapped for node 1's: a claim on an address another certified node owns.
    const mine = { cnf: 'ns/pod-x', ipv4: n1.pod.ipv4, ipv6: 'fd00:244:3::8' };
    const s2 = sealer('node-3', n3.identity!, [n2.identity!]);
    t.send(4, n2.addresses.ipv4, 6170, s2.seal('announce', 2n, announce(n3.addresses, [own, mine], 78), { node: 'node-2' })!);
    c.clock.advance(10);
    expect(n2.daemon.counters.drops['claim-outside-cidrs']).toBe(1);
    expect(n2.writer.remoteByAddress(n1.pod.ipv4)?.ipv6).toBe(n1.pod.ipv6);
  });

  it("a certificate whose CIDRs overlap another node's: the claim on the other node's address is refused as owned by it", async () => {
    const { c, n1, n2, n3 } = await converged();
    // The authority (wrongly) certified node 3 for all of 10.244.0.0/16: node 2's pod stays node 2's.
    const wide = c.certify('node-3', ['10.244.0.0/16', 'fd00:244::/32'], n3.addresses);
    const t = await attacker(c, n3.addresses);
    const claim = { cnf: 'ns/pod-3', ipv4: n2.pod.ipv4, ipv6: 'fd00:244:3::99' };
    t.send(
      4,
      n1.addresses.ipv4,
      6170,
      sealer('node-3', wide, [n1.identity!]).seal('announce', 1n, announce(n3.addresses, [claim], 9), { node: 'node-1' })!,
    );
    c.clock.advance(10);
    expect(n1.daemon.counters.drops['claim-owned-by-other']).toBe(1);
    expect(n1.writer.remoteByAddress('fd00:244:3::99')).toBeUndefined();
  });

  it.each([
    ['another authority', 'authority'],
    ['an expired certificate', 'expired'],
    ['a certificate not valid yet', 'not-yet-valid'],
    ['a certificate for another name than the frame', 'name'],
  ])('%s: refused before anything is registered', async (_what, reason) => {
    const { c, n1 } = await converged();
    const before = mapsOf(n1);
    const addresses = { ipv4: '10.0.0.9', ipv6: 'fd00::9' };
    const cidrs = ['10.244.9.0/24', 'fd00:244:9::/64'];
    const w = c.wallNow();
    const id =
      reason === 'authority'
        ? testIdentity(testAuthority(), { node: 'node-9', podCidrs: cidrs, addresses: [addresses.ipv4, addresses.ipv6] }, w)
        : reason === 'expired'
          ? c.certify('node-9', cidrs, addresses, { issuedAt: w - 86_400_000, notAfter: w - 1000 })
          : reason === 'not-yet-valid'
            ? c.certify('node-9', cidrs, addresses, { issuedAt: w + 86_400_000, notAfter: w + 2 * 86_400_000 })
            : c.certify('node-8', cidrs, addresses);
    const t = await attacker(c, addresses);
    const pods = [{ cnf: 'ns/pod-9', ipv4: '10.244.9.2', ipv6: 'fd00:244:9::2' }];
    const frame = sealer('node-9', id, []).seal('announce', 1n, announce(addresses, pods));
    t.send(4, n1.addresses.ipv4, 6170, frame!);
    c.clock.advance(10);
    expect(n1.daemon.counters.drops[reason]).toBe(1);
    expect(mapsOf(n1)).toEqual(before);
  });

  it('a truncated, an oversized or a bit-flipped certificate in a frame: refused, nothing registered', async () => {
    const { c, n1, n3 } = await converged();
    const before = mapsOf(n1);
    const t = await attacker(c, n3.addresses);
    const cert = n3.identity!.cert.bytes;
    const payload = announce(n3.addresses, [{ cnf: 'ns/pod-3b', ipv4: '10.244.3.3', ipv6: 'fd00:244:3::3' }], 50);
    const withCert = (certBytes: Buffer) =>
      encodeIdentityFrame({ type: 'announce', epoch: 99n, seq: 1n, node: 'node-3', payload, auth: 'signed', cert: certBytes }, () =>
        Buffer.alloc(64),
      );
    t.send(4, n1.addresses.ipv4, 6170, withCert(cert.subarray(0, cert.length - 10)));
    const flipped = Buffer.from(cert);
    flipped[40]! ^= 1;
    t.send(4, n1.addresses.ipv4, 6170, withCert(flipped));
    // Oversized: a certLen past the frame's end, and one past the largest certificate.
    const big = withCert(cert);
    big.writeUInt16BE(1000, 21);
    t.send(4, n1.addresses.ipv4, 6170, big);
    c.clock.advance(10);
    const d = n1.daemon.counters.drops;
    expect((d.short ?? 0) + (d.malformed ?? 0) + (d.signature ?? 0) + (d.cert ?? 0)).toBe(3);
    expect(mapsOf(n1)).toEqual(before);
  });

  it('a frame from a name with no certificate, pairwise-MACed: dropped before any crypto as unknown-identity', async () => {
    const { c, n1 } = await converged();
    const id = c.certify('node-7', ['10.244.7.0/24'], { ipv4: '10.0.0.7', ipv6: 'fd00::7' });
    const t = await attacker(c, { ipv4: '10.0.0.7', ipv6: 'fd00::7' });
    const probe = sealer('node-7', id, [n1.identity!]).seal('probe', 1n, Buffer.alloc(20), { node: 'node-1' })!;
    t.send(4, n1.addresses.ipv4, 6170, probe);
    c.clock.advance(10);
    expect(n1.daemon.counters.drops['unknown-identity']).toBe(1);
  });

  it('a cluster-key frame to an identity-only node: refused (no downgrade)', async () => {
    const { c, n1, n3 } = await converged();
    const before = mapsOf(n1);
    const { encodeFrame } = await import('../../../src/negotiator/protocol/frame');
    const { MEMORY_KEY } = await import('../../support/memory-cluster');
    const t = await attacker(c, n3.addresses);
    const pods = [
      { cnf: 'ns/pod-3', ipv4: n3.pod.ipv4, ipv6: n3.pod.ipv6 },
      { cnf: 'ns/evil', ipv4: '10.244.2.9', ipv6: 'fd00:244:2::9' },
    ];
    t.send(
      4,
      n1.addresses.ipv4,
      6170,
      encodeFrame(MEMORY_KEY, { type: 'announce', epoch: 999n, seq: 1n, node: 'node-3', payload: announce(n3.addresses, pods, 5) }),
    );
    c.clock.advance(10);
    expect(n1.daemon.counters.drops['cluster-key']).toBe(1);
    expect(mapsOf(n1)).toEqual(before);
  });

  it('a replayed datagram under a pairwise key: refused by the replay window, nothing applied twice', async () => {
    const { c, n1, n3 } = await converged();
    // Node 3's daemon stopped: only the captured frame speaks for it (a restart's epoch).
    n3.daemon.stop();
    const t = await attacker(c, n3.addresses);
    const s = sealer('node-3', n3.identity!, [n1.identity!], 1_000_000n);
    const pod = { cnf: 'ns/pod-3', ipv4: n3.pod.ipv4, ipv6: n3.pod.ipv6 };
    const f = s.seal('announce', 1n, announce(n3.addresses, [pod], 500), { node: 'node-1' })!;
    t.send(4, n1.addresses.ipv4, 6170, f);
    c.clock.advance(10);
    const drops = n1.daemon.counters.drops.replay ?? 0;
    t.send(4, n1.addresses.ipv4, 6170, f);
    c.clock.advance(10);
    expect(n1.daemon.counters.drops.replay).toBe(drops + 1);
    // The same bytes to node 2 (whose pairwise key with node 3 differs): refused as a bad MAC.
    const n2 = c.nodes[1]!;
    const macs = n2.daemon.counters.drops.mac ?? 0;
    t.send(4, n2.addresses.ipv4, 6170, f);
    c.clock.advance(10);
    expect(n2.daemon.counters.drops.mac).toBe(macs + 1);
  });

  it('a revoked node: dropped with its pods unregistered within one housekeeping tick; its later frames refused', async () => {
    const { c, n1, n3 } = await converged();
    expect(n1.writer.remoteByAddress(n3.pod.ipv4)).toBeDefined();
    const list = { issuedAt: c.wallNow(), revoked: new Map([['node-3', c.wallNow()]]) };
    const signed = verifyRevocations(signRevocations(c.authority.key, list), c.authority.pub);
    if (typeof signed === 'string') throw new Error(signed);
    n1.revocations = signed;
    c.clock.advance(1000);
    expect(n1.writer.remoteByAddress(n3.pod.ipv4)).toBeUndefined();
    expect(n1.daemon.status().peers.map((p) => p.node)).toEqual(['node-2']);
    c.clock.advance(3000);
    expect(n1.daemon.counters.drops.revoked).toBeGreaterThan(0);
    expect(n1.writer.remoteByAddress(n3.pod.ipv4)).toBeUndefined();
    // Node 2 (without the list) still has node 3.
    expect(c.nodes[1]!.writer.remoteByAddress(n3.pod.ipv4)).toBeDefined();
  });

  it('a node re-issued a new key under the same name (restart) is accepted; its pair keeps its family', async () => {
    const { c, n1, n2 } = await converged();
    c.net.latencyMs[4] = 10;
    c.net.latencyMs[6] = 1;
    c.firstPacket(n1, n2);
    expect(c.clock.advanceUntil(() => c.wire(n1, n2) === 'ipv6' && c.wire(n2, n1) === 'ipv6', 8000)).toBeDefined();
    const old = n2.identity!.cert.fingerprint;
    n2.identity = c.certify('node-2', ['10.244.2.0/24', 'fd00:244:2::/64'], n2.addresses, { issuedAt: c.wallNow() });
    await c.restart(n2);
    let flapped = false;
    c.clock.advanceUntil(() => {
      if (c.wire(n1, n2) !== 'ipv6' || c.wire(n2, n1) !== 'ipv6') flapped = true;
      return false;
    }, 5000);
    expect(flapped).toBe(false);
    expect(n1.daemon.counters.events['certificate-rotated']).toBe(1);
    expect(n2.identity.cert.fingerprint).not.toBe(old);
    expect(n1.daemon.status().peers.find((p) => p.node === 'node-2')?.families.IPv6?.state).toBe('up');
  });

  it('certificates near expiry are shown in status (own and peers)', async () => {
    const c = (cluster = new MemoryCluster(2, {}, [], { auth: 'identity' }));
    const n1 = c.nodes[0]!;
    n1.identity = c.certify('node-1', ['10.244.1.0/24', 'fd00:244:1::/64'], n1.addresses, { notAfter: c.wall0 + 3 * 86_400_000 });
    (c as unknown as { build(n: MemoryNode): void }).build(n1);
    await c.start();
    c.clock.advance(2000);
    expect(n1.daemon.status().identity).toMatchObject({ own: { nearExpiry: true, daysLeft: 2 } });
    expect(c.nodes[1]!.daemon.status().identity).toMatchObject({ nearExpiry: [{ node: 'node-1' }] });
  });
});
