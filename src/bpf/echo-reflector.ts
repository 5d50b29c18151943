/**
 * afsteerd's probe reflector in the kernel (bpf/afsteer_echo.bpf.c): loads the echo object once
 * per node (maps pinned under pinDir, the program under progs/<hash>/), writes the echo port,
 * and attaches the program to the clsact ingress of the interfaces holding the node's control
 * addresses, with its own tc handle and priority (0xae), beside any other filter there. It is
 * left attached when afsteerd stops, so peers keep measuring the paths across a restart; a new
 * afsteerd replaces it.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readAsset } from '../native/assets';
import { check, libbpf, openAndLoad } from './libbpf';
import type { StructLayout } from './maps-layout';
import { possibleCpus, withPinnedMap } from './pinned-map';
import { assertBpffs, closeFds, openPinned, programPinDir } from './programs';
import { attach, ensureClsact } from './tc';

/** The program's name in the echo object. */
export const ECHO_PROGRAM = 'afsteer_echo_reflect';
/** tc handle and priority of the reflector's filter (afsteer's pod filters use 0xaf). */
export const ECHO_TC_HANDLE = 0xae;

/** struct afsteer_echo_cfg (bpf/include/afsteer_echo.h) */
export const EchoCfgLayout = {
  name: 'afsteer_echo_cfg',
  size: 4,
  fields: { port_be: { offset: 0, size: 2 }, pad: { offset: 2, size: 2 } },
} as const satisfies StructLayout;
/** struct afsteer_echo_stats (per CPU) */
export const EchoStatsLayout = {
  name: 'afsteer_echo_stats',
  size: 8,
  fields: { reflected: { offset: 0, size: 8 } },
} as const satisfies StructLayout;
/** The echo object's maps. */
export const ECHO_MAPS = {
  cfg: { name: 'afsteer_echo_cfg', keySize: 4, valueSize: EchoCfgLayout.size, maxEntries: 1 },
  stats: { name: 'afsteer_echo_stats', keySize: 4, valueSize: EchoStatsLayout.size, maxEntries: 1 },
} as const;

/** Loads (once) and pins the echo program; returns its fd. */
function ensureEchoProgram(pinDir: string): number {
  assertBpffs(pinDir);
  const elf = readAsset('afsteer_echo.bpf.o');
  const dir = programPinDir(pinDir, createHash('sha256').update(elf).digest('hex').slice(0, 16));
  const path = join(dir, ECHO_PROGRAM);
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const obj = openAndLoad(elf, 'afsteer_echo', pinDir);
    try {
      const prog = libbpf().findProg(obj, ECHO_PROGRAM);
      if (!prog) throw new Error(`program ${ECHO_PROGRAM} missing from the echo object`);
      check(`bpf_program__pin(${path})`, libbpf().progPin(prog, path));
    } finally {
      libbpf().objClose(obj);
    }
  }
  return openPinned(path);
}

/** Loads the reflector, sets echoPort and attaches it to the ingress of the links (by index). Throws with the cause. */
export function attachEchoReflector(pinDir: string, echoPort: number, ifindexes: number[]): void {
  const fd = ensureEchoProgram(pinDir);
  try {
    withPinnedMap(pinDir, ECHO_MAPS.cfg.name, ECHO_MAPS.cfg.keySize, ECHO_MAPS.cfg.valueSize, (m) => {
      const v = Buffer.alloc(EchoCfgLayout.size);
      v.writeUInt16BE(echoPort, EchoCfgLayout.fields.port_be.offset);
      m.update(Buffer.alloc(4), v);
    });
    for (const ifindex of ifindexes) {
      ensureClsact(ifindex);
      attach(ifindex, 'ingress', fd, ECHO_TC_HANDLE);
    }
  } finally {
    closeFds(fd);
  }
}

/** Echoes the kernel reflector has sent back, summed over CPUs (0 when it was never loaded). */
export function echoesReflected(pinDir: string): number {
  if (!existsSync(join(pinDir, ECHO_MAPS.stats.name))) return 0;
  const cpus = possibleCpus();
  return withPinnedMap(pinDir, ECHO_MAPS.stats.name, ECHO_MAPS.stats.keySize, EchoStatsLayout.size * cpus, (m) => {
    const v = m.lookup(Buffer.alloc(4));
    let n = 0;
    for (let c = 0; v && c < cpus; c++) n += Number(v.readBigUInt64LE(c * EchoStatsLayout.size));
    return n;
  });
}
