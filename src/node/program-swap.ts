/**
 * Moving a node's pods onto this build's programs: on every recorded attachment whose host veth
 * (or, placement pod, whose interface in the recorded pod namespace) still carries afsteer's
 * filters, each filter running another program is replaced in place (same handle and priority —
 * and in a pod the same classid — one atomic switch, no packet sees no filter), likewise
 * afsteer_bridge_out on the bridges; each state file then names the new
 * program directory; program pins no state file names any more are removed (a pin removed does not
 * detach anything: a filter holds its program). Run under the node lock.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { objectId } from '../bpf/libbpf';
import { attachInPod, idOfClassid, podFilters } from '../bpf/pod-filters';
import { PROGRAMS, type ProgramFds } from '../bpf/programs';
import { attach, query } from '../bpf/tc';
import { Rtnl } from '../net/rtnl';
import { log } from '../util/log';
import { type AttachmentState, listStates, saveState } from './attachments';
import { openRecordedNetns } from './recorded-netns';

/** What a swap did. */
export interface SwapReport {
  /** Filters replaced (pod veths' ingress/egress, bridges' egress). */
  replaced: number;
  /** Program pin directories removed. */
  removedDirs: string[];
}

/** Moves every recorded pod and bridge onto the programs in fds; removes program pins nothing recorded uses. */
export async function swapPrograms(pinDir: string, stateDir: string, fds: ProgramFds): Promise<SwapReport> {
  const ids = { fromPod: objectId(fds.fromPod), toPod: objectId(fds.toPod), bridgeOut: objectId(fds.bridgeOut) };
  let replaced = 0;
  const bridgesDone = new Set<number>();
  const host = Rtnl.host();
  try {
    for (const s of listStates(stateDir, (file, err) =>
      log.warn('program swap skips an unreadable state file', { file, error: String(err) }),
    )) {
      if (s.placement === 'pod') {
        const n = await swapInPod(s, ids, fds);
        replaced += n;
        if (n || s.progDir !== fds.dir) saveState(stateDir, { ...s, progDir: fds.dir });
        continue;
      }
      const link = s.hostIfindex === undefined ? undefined : await host.linkByIndex(s.hostIfindex);
      if (!link || link.name !== s.hostIfname) continue; // the veth is gone (DEL or GC will clean the rest)
      let moved = false;
      for (const [point, fd, id] of [
        ['ingress', fds.fromPod, ids.fromPod],
        ['egress', fds.toPod, ids.toPod],
      ] as const) {
        const running = query(link.index, point);
        if (running === undefined || running === id) continue;
        attach(link.index, point, fd);
        replaced++;
        moved = true;
      }
      if (s.bridge && !bridgesDone.has(s.bridge.ifindex)) {
        bridgesDone.add(s.bridge.ifindex);
        const br = await host.linkByIndex(s.bridge.ifindex);
        const running = br?.name === s.bridge.name && br.kind === 'bridge' ? query(br.index, 'egress') : undefined;
        if (running !== undefined && running !== ids.bridgeOut) {
          attach(br!.index, 'egress', fds.bridgeOut);
          replaced++;
        }
      }
      if (moved || s.progDir !== fds.dir) saveState(stateDir, { ...s, progDir: fds.dir });
    }
  } finally {
    host.close();
  }
  const removedDirs = removeUnusedProgramDirs(pinDir, stateDir, fds.dir);
  if (replaced || removedDirs.length) log.info("moved pods onto this build's programs", { replaced, removedDirs, progDir: fds.dir });
  return { replaced, removedDirs };
}

/** An in-pod attachment's two filters moved onto fds' programs (keeping their classid); 0 when its namespace or interface is gone or they run these already. */
async function swapInPod(s: AttachmentState, ids: { fromPod: number; toPod: number }, fds: ProgramFds): Promise<number> {
  const { ns } = openRecordedNetns(s.netns, s.netnsId);
  if (!ns) return 0; // the pod is gone: its filters went with it
  let pod: Rtnl | undefined;
  try {
    pod = Rtnl.inNamespace(ns.path);
    const link = await pod.linkByName(s.ifname);
    if (!link) return 0;
    const f = await podFilters(pod, link.index);
    const id = f.fromPod && idOfClassid(f.fromPod.classid);
    if (!f.fromPod || !f.toPod || id === undefined) return 0;
    if (f.fromPod.progId === ids.fromPod && f.toPod.progId === ids.toPod) return 0;
    await attachInPod(pod, link.index, id, fds);
    return 2;
  } catch (err) {
    log.warn('program swap could not reach an in-pod attachment', { container: s.containerId, ifname: s.ifname, error: String(err) });
    return 0;
  } finally {
    pod?.close();
    ns.close();
  }
}

/**
 * Removes the program directories of afsteer's pod object (pinDir/progs/* holding afsteer_from_pod)
 * other than keep that no state file names; returns them. Other directories there (the echo
 * reflector's object, which afsteerd attaches to the uplinks) are not the pods' and stay.
 */
export function removeUnusedProgramDirs(pinDir: string, stateDir: string, keep: string): string[] {
  const root = join(pinDir, 'progs');
  let dirs: string[];
  try {
    dirs = readdirSync(root);
  } catch {
    return [];
  }
  const used = new Set(listStates(stateDir).map((s) => s.progDir));
  const removed: string[] = [];
  for (const d of dirs) {
    const p = join(root, d);
    if (p === keep || used.has(p) || !existsSync(join(p, PROGRAMS.fromPod))) continue;
    rmSync(p, { recursive: true, force: true });
    removed.push(p);
  }
  return removed;
}
