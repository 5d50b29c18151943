/**
 * The data plane's afsteer_pair_seen map (bpf/include/afsteer_maps.h), mapped into afsteerd's
 * memory and read in place: when each pair's last packet left this node and when the remote pod's
 * last one arrived, per wire family, in CLOCK_MONOTONIC ms (the clock of bpf_ktime_get_ns and of
 * process.hrtime). Reading costs no system call, so the prober can look at every pair with a
 * peer on every tick (demand-style probing: src/negotiator/probing/traffic-proof.ts).
 */
import { closeSync } from 'node:fs';
import { join } from 'node:path';
import { mmapReadOnly } from '../native/libc';
import { openPinned } from './libbpf';
import { MAPS, PairSeenLayout } from './maps-layout';

/** u64 fields per entry: sent_ns[2], received_ns[2]. */
const WORDS = PairSeenLayout.size / 8;

/** The pair-seen map, mapped read-only. */
export class PairSeen {
  private constructor(private readonly u32: Uint32Array) {}

  /** Maps the pinned map of pinDir; throws when it is missing (an object from before it existed) or cannot be mapped. */
  static open(pinDir: string): PairSeen {
    const fd = openPinned(join(pinDir, MAPS.pairSeen.name));
    try {
      return new PairSeen(new Uint32Array(mmapReadOnly(fd, MAPS.pairSeen.maxEntries * PairSeenLayout.size)));
    } finally {
      // The mapping holds the map; the fd is not needed any more.
      closeSync(fd);
    }
  }

  /** CLOCK_MONOTONIC now, ms. */
  static nowMs(): number {
    return Number(process.hrtime.bigint()) / 1e6;
  }

  /** When pair's last packet left (received: false) or arrived (true) over wire family (4 or 6), CLOCK_MONOTONIC ms; 0: never. */
  at(pair: number, received: boolean, family: 4 | 6): number {
    if (pair < 0 || pair >= MAPS.pairSeen.maxEntries) return 0;
    const w = (pair * WORDS + (received ? 2 : 0) + (family === 4 ? 0 : 1)) * 2;
    // Little-endian u64 as two u32: exact below 2^53 ns (104 days), within a few ns after.
    return (this.u32[w + 1]! * 4294967296 + this.u32[w]!) / 1e6;
  }
}
