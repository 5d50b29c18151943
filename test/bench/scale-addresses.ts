/** Addresses of the scale benchmark's simulated peers and their pods (shared by scale-run.ts and loadgen.ts). */

/** Control address of simulated peer i (1-based) per family: routable (the peers live on the middle namespace's loopback). */
export function simAddressOf(i: number): { ipv4: string; ipv6: string } {
  return { ipv4: `100.64.${i >> 8}.${i & 255}`, ipv6: `fd77::1:${i.toString(16)}` };
}

/** Addresses of simulated peer i's pod in slot h (2–253; a pod added later takes the next slot, so addresses are not reused at once). */
export function simPodAddressOf(i: number, h: number): { ipv4: string; ipv6: string } {
  return { ipv4: `10.${100 + (i >> 8)}.${i & 255}.${h}`, ipv6: `fd88::${i.toString(16)}:${h.toString(16)}` };
}

/** Node name of simulated peer i. */
export function simNameOf(i: number): string {
  return `sim-${i}`;
}

/** True when simulated peer i holds an active pair with the daemon's node (every tenth peer, spread over the range). */
export function simIsActive(i: number, activeEvery: number): boolean {
  return activeEvery > 0 && (i - 1) % activeEvery === 0;
}

/** The rank of active simulated peer i among the active ones (0, 1, …): its pair is with the daemon's pod of that rank, round robin. */
export function simPairIndex(i: number, activeEvery: number): number {
  return Math.floor((i - 1) / activeEvery);
}
