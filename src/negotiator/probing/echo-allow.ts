/**
 * The echo reflectors' allow-list: the control addresses of the authenticated peers (the peer
 * table's address index, told through PeerTable.onAddress), the only sources either reflector —
 * the kernel's (its afsteer_echo_peers map, kept here) or the userspace fallback — answers. An
 * address is in the list while a peer holds it. Across a restart the kernel's map keeps what the
 * previous run allowed (the kernel reflector answers on while afsteerd restarts, and a peer's
 * probes must not be refused before it is heard again) until the peer timeout has passed since
 * start; then it holds exactly the known peers (dropLeftovers). The kernel map's size limit (5,000 nodes × 2 families
 * and more) refuses an address: counted, logged once per address, the userspace list still has it.
 */
import type { EchoRefusal } from '../../bpf/echo-maps';
import { canonical } from '../../net/ip';
import { log } from '../../util/log';

/** The kernel reflector's allow-list map, as this needs it (src/bpf/echo-maps.ts EchoAllowList). */
export interface KernelEchoList {
  add(address: string): void;
  remove(address: string): boolean;
  replaceAll(addresses: Iterable<string>): string[];
  close(): void;
}

/** The kernel echo reflector, when attached: its allow-list map and its counts. */
export interface KernelEcho {
  list: KernelEchoList;
  counts(): { reflected: number; refused: Record<EchoRefusal, number> };
}

/** The allow-list, in memory and (when the kernel reflector is attached) in its map. */
export class EchoPeerList {
  private readonly allowed = new Set<string>();
  /** Addresses added and removed; kernel map refusals (full) and failures. */
  readonly stats = { added: 0, removed: 0, kernelFull: 0, kernelErrors: 0 };

  private leftoversDropped = false;

  /** kernel: the kernel reflector's map, kept as a previous run left it until dropLeftovers(). */
  constructor(private readonly kernel?: KernelEchoList) {}

  /** Once (a peer timeout after start): the kernel's map keeps only the known peers' addresses, not a previous run's. */
  dropLeftovers(): void {
    if (this.leftoversDropped || !this.kernel) return;
    this.leftoversDropped = true;
    try {
      for (const a of this.kernel.replaceAll(this.allowed))
        log.warn('echo allow-list full: the kernel reflector will refuse this peer', { address: a });
    } catch (err) {
      this.stats.kernelErrors++;
      log.warn('cannot update the echo allow-list', { error: (err as Error).message });
    }
  }

  /** Allows (known) or stops allowing an address. */
  set(address: string, known: boolean): void {
    const a = canonical(address);
    if (known === this.allowed.has(a)) return;
    if (known) {
      this.allowed.add(a);
      this.stats.added++;
    } else {
      this.allowed.delete(a);
      this.stats.removed++;
    }
    if (!this.kernel) return;
    try {
      if (known) this.kernel.add(a);
      else this.kernel.remove(a);
    } catch (err) {
      const full = (err as Error).name === 'EchoAllowListFull';
      if (full) this.stats.kernelFull++;
      else this.stats.kernelErrors++;
      log.warn(full ? 'echo allow-list full: the kernel reflector will refuse this peer' : 'cannot update the echo allow-list', {
        address: a,
        error: (err as Error).message,
      });
    }
  }

  /** True when address is a known peer's control address. */
  has(address: string): boolean {
    return this.allowed.has(canonical(address));
  }

  /** Addresses allowed. */
  get size(): number {
    return this.allowed.size;
  }

  /** Closes the kernel map. */
  close(): void {
    this.kernel?.close();
  }
}
