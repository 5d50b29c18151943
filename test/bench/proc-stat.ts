/** A process's CPU time and resident memory from /proc, for the benchmarks (scale-run, udp-floor). */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ, 100 on Linux). */
export const CLK_TCK = 100;

/** User and system CPU ticks of pid ('self' for this process): /proc/PID/stat utime, stime. */
export function cpuSplit(pid: number | 'self'): { user: number; system: number } {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(f[11]), system: Number(f[12]) };
}

/** User + system CPU ticks of pid. */
export function cpuTicks(pid: number | 'self'): number {
  const t = cpuSplit(pid);
  return t.user + t.system;
}

/** Resident memory of pid in MB (/proc/PID/status VmRSS). */
export function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}
