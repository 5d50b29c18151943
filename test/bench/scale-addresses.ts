/** Addresses of the scale benchmark's simulated peers (shared by scale.ts and loadgen.ts). */

/** Address of simulated peer i (1-based) per family, on the benchmark namespace's loopback. */
export function simAddressOf(i: number): { ipv4: string; ipv6: string } {
  return { ipv4: `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`, ipv6: `fd77::1:${i.toString(16)}` };
}
