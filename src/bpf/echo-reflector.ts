/**
 * afsteerd's probe reflector in the kernel (bpf/afsteer_echo.bpf.c): loads the echo object once
 * per node (maps pinned under pinDir, the program under progs/<hash>/), writes the echo port,
 * and attaches the program to the clsact ingress of the interfaces holding the node's control
 * addresses, with its own tc handle and priority (0xae), beside any other filter there. It is
 * left attached when afsteerd stops, so peers keep measuring the paths across a restart; a new
 * afsteerd replaces it. A pinned map of the reflector whose layout is not this version's (left by
 * an older afsteerd: echo-maps.ts pinLayoutProblem) is unpinned before loading, with the program
 * pinned against it, so the object is loaded afresh with its own maps: the reflector's state is
 * all derived (the port and rate written here, the allow-list by afsteerd, buckets and counts
 * start again).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readAsset } from '../native/assets';
import { log } from '../util/log';
import { ECHO_MAPS, ECHO_RATE, echoCounts, encodeEchoCfg, pinLayoutProblem } from './echo-maps';
import { check, closeFds, libbpf, objectId, openAndLoad, openPinned } from './libbpf';
import { withPinnedMap } from './pinned-map';
import { assertBpffs, programPinDir } from './programs';
import { attach, ensureClsact, query } from './tc';

/** The program's name in the echo object. */
export const ECHO_PROGRAM = 'afsteer_echo_reflect';
/** tc handle and priority of the reflector's filter (afsteer's pod filters use 0xaf). */
export const ECHO_TC_HANDLE = 0xae;

/** Loads (once) and pins the echo program; returns its fd and its pin. */
function ensureEchoProgram(pinDir: string): { fd: number; path: string } {
  assertBpffs(pinDir);
  const elf = readAsset('afsteer_echo.bpf.o');
  const dir = programPinDir(pinDir, createHash('sha256').update(elf).digest('hex').slice(0, 16));
  const path = join(dir, ECHO_PROGRAM);
  const stale = replaceStalePins(pinDir);
  if (stale.length) rmSync(dir, { recursive: true, force: true });
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
  return { fd: openPinned(path), path };
}

/** Unpins every reflector map whose pinned layout is not this version's; returns their names. */
export function replaceStalePins(pinDir: string): string[] {
  const replaced: string[] = [];
  for (const spec of Object.values(ECHO_MAPS)) {
    const problem = pinLayoutProblem(pinDir, spec);
    if (!problem) continue;
    log.warn('replacing an echo reflector map pinned by another version', { map: spec.name, problem });
    rmSync(join(pinDir, spec.name), { force: true });
    replaced.push(spec.name);
  }
  return replaced;
}

/** Loads the reflector, sets echoPort and the per-source rate, and attaches it to the ingress of the links (by index). Throws with the cause. */
export function attachEchoReflector(
  pinDir: string,
  echoPort: number,
  ifindexes: number[],
  rate: { perSec: number; burst: number } = ECHO_RATE,
): void {
  prepareEchoReflector(pinDir, echoPort, rate).attach(ifindexes);
}

/** The reflector loaded and configured (its maps pinned, the allow-list among them), not yet attached. */
export interface PreparedEchoReflector {
  /** Links whose ingress runs another reflector program now (a previous build's). */
  othersOn(ifindexes: number[]): number[];
  /** Attaches (or replaces what runs at its handle on) the links' ingress. */
  attach(ifindexes: number[]): void;
}

/**
 * Loads the reflector and writes echoPort and the rate, without attaching it: a caller taking over
 * from another build's reflector can fill the allow-list first (afsteerd's start). Throws with the cause.
 */
export function prepareEchoReflector(
  pinDir: string,
  echoPort: number,
  rate: { perSec: number; burst: number } = ECHO_RATE,
): PreparedEchoReflector {
  const { fd, path: program } = ensureEchoProgram(pinDir);
  let id: number;
  try {
    id = objectId(fd);
    withPinnedMap(pinDir, ECHO_MAPS.cfg.name, ECHO_MAPS.cfg.keySize, ECHO_MAPS.cfg.valueSize, (m) => {
      m.update(Buffer.alloc(4), encodeEchoCfg(echoPort, rate));
    });
  } finally {
    closeFds(fd);
  }
  return {
    othersOn: (ifindexes) =>
      ifindexes.filter((i) => {
        const running = query(i, 'ingress', ECHO_TC_HANDLE);
        return running !== undefined && running !== id;
      }),
    attach: (ifindexes) => {
      const pfd = openPinned(program);
      try {
        for (const ifindex of ifindexes) {
          ensureClsact(ifindex);
          attach(ifindex, 'ingress', pfd, ECHO_TC_HANDLE);
        }
      } finally {
        closeFds(pfd);
      }
    },
  };
}

/** Echoes the kernel reflector has sent back, summed over CPUs (0 when it was never loaded). */
export function echoesReflected(pinDir: string): number {
  return echoCounts(pinDir).reflected;
}
