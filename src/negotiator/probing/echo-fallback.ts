/**
 * afsteerd's userspace echo reflector: on its own transport bound to the echo port, an echo
 * datagram (protocol/echo.ts) is sent back unchanged to where it came from — only when it comes
 * from a known peer's control address (the allow-list, echo-allow.ts), within that source's rate
 * (a token bucket per source, the kernel reflector's figures), is exactly one echo long (a reply
 * is never larger than its request: it is the request) and not from an echo port. Everything
 * else is refused and counted by reason, as the kernel reflector counts its own. Where the
 * kernel reflector is attached it answers first and this sees nothing; it is the fallback (no
 * clsact on the interface, a kernel without the program, in-memory tests).
 */
import { ECHO_RATE, type EchoRefusal } from '../../bpf/echo-maps';
import { ECHO_LEN, isEcho } from '../protocol/echo';
import type { DatagramTransport, MulticastOptions } from '../transport/udp';

/** Why the fallback refused a datagram: the kernel's reasons, and not an echo at all. */
export type FallbackRefusal = EchoRefusal | 'not-echo';

/** Sources whose buckets are kept (the oldest is forgotten past this, as the kernel's LRU does). */
const MAX_BUCKETS = 16384;

/** A token bucket per source address: true when one more echo may go now. Pure but for its map. */
export class SourceRate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly rate: { perSec: number; burst: number } = ECHO_RATE) {}

  /** Takes a token for source at nowMs; false when its bucket is empty. */
  take(source: string, nowMs: number): boolean {
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.rate.burst, at: nowMs };
    } else this.buckets.delete(source); // re-inserted below: most recently used last
    b.tokens = Math.min(this.rate.burst, b.tokens + (Math.max(0, nowMs - b.at) * this.rate.perSec) / 1000);
    b.at = nowMs;
    this.buckets.set(source, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/** The userspace reflector on one transport. */
export class EchoReflector {
  /** Echoes sent back; datagrams refused, by reason. */
  readonly stats: { reflected: number; refused: Record<FallbackRefusal, number> } = {
    reflected: 0,
    refused: { 'unknown-source': 0, rate: 0, size: 0, loop: 0, 'not-echo': 0 },
  };
  private readonly rate: SourceRate;

  /** allowed: the allow-list; now: a clock in ms (the daemon's). */
  constructor(
    private readonly transport: DatagramTransport,
    private readonly echoPort: number,
    private readonly allowed: { has(address: string): boolean },
    private readonly now: () => number,
    rate = ECHO_RATE,
  ) {
    this.rate = new SourceRate(rate);
  }

  /** Starts reflecting on the families this node has addresses for. */
  async start(addresses: { ipv4?: string; ipv6?: string }): Promise<void> {
    const noMulticast: MulticastOptions | undefined = undefined;
    await this.transport.start(addresses, noMulticast, (b, src) => {
      const why = this.refusal(b, src);
      if (why) {
        this.stats.refused[why]++;
        return;
      }
      this.stats.reflected++;
      this.transport.send(src.family, src.address, src.port, b);
    });
  }

  /** Why a datagram is not sent back, or undefined when it is. */
  private refusal(b: Buffer, src: { address: string; port: number }): FallbackRefusal | undefined {
    if (!isEcho(b)) return 'not-echo';
    if (src.port === this.echoPort) return 'loop';
    if (b.length !== ECHO_LEN) return 'size';
    if (!this.allowed.has(src.address)) return 'unknown-source';
    if (!this.rate.take(src.address, this.now())) return 'rate';
    return undefined;
  }

  /** Stops reflecting. */
  close(): void {
    this.transport.close();
  }
}
