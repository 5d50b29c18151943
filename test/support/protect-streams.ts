/**
 * A protected pair's streams across a blackhole, for the protection tests and bench: a paced TCP
 * stream and a numbered UDP stream (test/fixtures/stream.mjs udp-seq-*) from one pod to another,
 * the family blackholed in the middle part-way through, lifted at the end. Returns what the
 * applications saw: TCP longest stall and sha256 on both ends, UDP unique, lost, duplicated.
 */
import type { Family } from '../../src/net/family';
import type { SimPod, TwoNodes } from './two-nodes';

/** What the applications saw. */
export interface CrossingResult {
  tcp: { stallMs: number; intact: boolean; bytes: number };
  udp: { sent: number; unique: number; lost: number; duplicated: number; stallMs: number };
}

/** Options of one crossing. */
export interface CrossingOptions {
  /** Datagrams per second (default 10,000) and the run's length (default 4 s); the blackhole starts blackholeAtMs in (default 1.5 s). */
  rate?: number;
  durationMs?: number;
  blackholeAtMs?: number;
  port: number;
  /** false: the same streams with no blackhole (the floor of the stall measurement); default true. */
  blackhole?: boolean;
  /** Called just before the blackhole is put in place (nft starts), and as soon as it is (nft returned). */
  onBlackholeStart?: () => void;
  onBlackhole?: () => void;
}

/** Streams from `from` to `to` over `family` addresses; blackholes `family` part-way (unless o.blackhole is false); lifts it. */
export async function crossBlackhole(t: TwoNodes, from: SimPod, to: SimPod, family: Family, o: CrossingOptions): Promise<CrossingResult> {
  const rate = o.rate ?? 10_000,
    durationMs = o.durationMs ?? 4000,
    at = o.blackholeAtMs ?? 1500,
    blackhole = o.blackhole ?? true;
  const dst = family === 4 ? to.ipv4 : to.ipv6;
  const count = Math.round((rate * durationMs) / 1000);
  const tcpSrv = await t.server(to, dst, o.port);
  const udpSrv = await t.server(to, dst, o.port + 1, false, 'udp-seq-server', ['--expect', String(count), '--idle-ms', '1500']);
  const tcpCli = t.client(from, dst, o.port, ['--duration-ms', String(durationMs), '--chunk', '8192', '--interval-ms', '5']);
  const udpCli = t.client(from, dst, o.port + 1, ['--count', String(count), '--rate', String(rate), '--size', '200'], 'udp-seq-client');
  try {
    await new Promise((r) => setTimeout(r, at));
    if (blackhole) {
      o.onBlackholeStart?.();
      await t.impair(family, 'blackhole');
      o.onBlackhole?.();
    }
    const [c, s, uc, us] = [await tcpCli, await tcpSrv.done, await udpCli, await udpSrv.done];
    return {
      tcp: { stallMs: Number(s.maxGapMs), intact: s.sha256 === c.sha256 && s.bytes === c.bytes, bytes: Number(s.bytes) },
      udp: {
        sent: Number(uc.sent),
        unique: Number(us.unique),
        lost: Number(us.lost),
        duplicated: Number(us.duplicated),
        stallMs: Number(us.maxGapMs),
      },
    };
  } finally {
    if (blackhole) await t.impair(family, null);
  }
}
