/**
 * afsteerd's userspace echo reflector: on its own transport bound to the echo port, every echo
 * datagram (protocol/echo.ts) not sent from an echo port is sent back unchanged to where it came
 * from. Where the kernel reflector is attached it answers first and this sees nothing; it is the
 * fallback (no clsact on the interface, a kernel without the program, in-memory tests).
 */
import { ECHO_LEN, isEcho } from '../protocol/echo';
import type { DatagramTransport, MulticastOptions } from '../transport/udp';

/** The userspace reflector on one transport. */
export class EchoReflector {
  /** Echoes sent back, and datagrams refused (not an echo, or from an echo port). */
  readonly stats = { reflected: 0, refused: 0 };

  constructor(
    private readonly transport: DatagramTransport,
    private readonly echoPort: number,
  ) {}

  /** Starts reflecting on the families this node has addresses for. */
  async start(addresses: { ipv4?: string; ipv6?: string }): Promise<void> {
    const noMulticast: MulticastOptions | undefined = undefined;
    await this.transport.start(addresses, noMulticast, (b, src) => {
      if (b.length !== ECHO_LEN || !isEcho(b) || src.port === this.echoPort) {
        this.stats.refused++;
        return;
      }
      this.stats.reflected++;
      this.transport.send(src.family, src.address, src.port, b);
    });
  }

  /** Stops reflecting. */
  close(): void {
    this.transport.close();
  }
}
