/**
 * afsteer on the live node, for `afsteer install --uninstall`: the pods it is attached to (the
 * state files in the stateDir, and endpoint map entries in the pinDir that have none), whether
 * afsteerd still runs, taking afsteer off the pods with the plugin's own teardown (--force), and
 * removing afsteerd's echo reflector, the pins and the state afterwards. The pinDir, stateDir
 * and control socket are the node's, not --root's files: they come from --pin-dir and
 * --state-dir, else from the afsteer entry of the installed conflist, else the defaults — the
 * last two taken beneath --root (the node's / as the installer sees it).
 */
import { existsSync, lstatSync, readdirSync, rmdirSync, rmSync, type Stats, statfsSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, join } from 'node:path';
import { MAPS } from '../bpf/maps-layout';
import { pathProblem } from '../cni/path-keys';
import { DEFAULT_CONTROL_SOCKET, DEFAULT_PIN_DIR, DEFAULT_STATE_DIR, LOCK_FILE, nodeLockPath } from '../defaults';
import { type AttachmentState, cnfIdOf, listStates } from '../node/attachments';
import { describeError } from '../util/describe-error';
import { dirProblem, fileKind } from '../util/safe-fs';
import { InstallRefusal } from './plan';

/** The node's afsteer directories and afsteerd's control socket. */
export interface NodeAfsteer {
  pinDir: string;
  stateDir: string;
  controlSocket: string;
}

/** An endpoint map entry with no state file (an ADD whose state was lost): its host ifindex and addresses. */
export interface OrphanEndpoint {
  ifindex: number;
  addresses: string[];
}

/** afsteer's pods on the node. */
export interface NodePods {
  states: AttachmentState[];
  orphans: OrphanEndpoint[];
  /** State files that could not be read (named in the listing; removed with the state by --force). */
  unreadable: string[];
}

/** How long the uninstall waits for the node lock (a running ADD or DEL holds it for milliseconds). */
const LOCK_TIMEOUT_MS = 30_000;
/** How long a connect to afsteerd's control socket may take before afsteerd counts as not running. */
const CONNECT_TIMEOUT_MS = 2_000;

const BPF_FS_MAGIC = 0xcafe4a11;
const onBpffs = (p: string): boolean => Number(statfsSync(p).type) === BPF_FS_MAGIC;

/** Checks a --pin-dir/--state-dir value (absolute, no '.' or '..'). */
function flagPath(flag: string, text: string): string {
  const bad = pathProblem(text);
  if (bad) throw new InstallRefusal(`--${flag} ${text} ${bad}`);
  return text;
}

/** The afsteer entry of a conflist's text, or undefined. */
function afsteerEntry(conflist: string | undefined): Record<string, unknown> | undefined {
  try {
    const list = JSON.parse(conflist ?? 'null') as { plugins?: unknown[] } | null;
    const entry = list?.plugins?.find((p) => p && typeof p === 'object' && (p as { type?: unknown }).type === 'afsteer');
    return entry as Record<string, unknown> | undefined;
  } catch {
    return undefined; // not JSON any more: the defaults
  }
}

/** The node's pinDir, stateDir and control socket for an uninstall (see the file's head), from flags and the installed conflist's text. */
export function nodeAfsteer(root: string, flags: { pinDir?: string; stateDir?: string }, conflist?: string): NodeAfsteer {
  const entry = afsteerEntry(conflist);
  const configured = (key: string, dflt: string): string => {
    const v = entry?.[key];
    return join(root, typeof v === 'string' && pathProblem(v) === undefined ? v : dflt);
  };
  return {
    pinDir: flags.pinDir !== undefined ? flagPath('pin-dir', flags.pinDir) : configured('pinDir', DEFAULT_PIN_DIR),
    stateDir: flags.stateDir !== undefined ? flagPath('state-dir', flags.stateDir) : configured('stateDir', DEFAULT_STATE_DIR),
    controlSocket: configured('daemonSocket', DEFAULT_CONTROL_SOCKET),
  };
}

/** Refuses while afsteerd answers on its control socket: it holds the pins and would attach again what the uninstall removes. */
export async function refuseRunningDaemon(socket: string): Promise<void> {
  const answers = await new Promise<boolean>((resolve) => {
    const c = connect(socket);
    const done = (up: boolean): void => {
      clearTimeout(timer);
      c.destroy();
      resolve(up);
    };
    const timer = setTimeout(() => done(false), CONNECT_TIMEOUT_MS);
    c.once('connect', () => done(true));
    c.once('error', () => done(false));
  });
  if (answers)
    throw new InstallRefusal(
      `afsteerd is running (its control socket ${socket} answers): stop it first (systemctl disable --now afsteerd, or delete the DaemonSet); nothing changed`,
    );
}

/** The pods afsteer is attached to on the node. */
export async function findPods(n: NodeAfsteer): Promise<NodePods> {
  const unreadable: string[] = [];
  const states = listStates(n.stateDir, (f, err) => unreadable.push(`${join(n.stateDir, 'attachments', f)} (${describeError(err)})`));
  let orphans: OrphanEndpoint[] = [];
  if (pinDirState(n.pinDir) === 'present') {
    let endpoints: Map<number, { ipv4?: string; ipv6?: string }> | undefined;
    try {
      lstatSync(join(n.pinDir, MAPS.endpoints.name));
      endpoints = (await import('../bpf/endpoint-map')).listEndpoints(n.pinDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    orphans = [...(endpoints ?? [])]
      .filter(([ifindex]) => !states.some((s) => s.hostIfindex === ifindex))
      .map(([ifindex, ep]) => ({ ifindex, addresses: [ep.ipv4, ep.ipv6].filter((a) => a !== undefined) }));
  }
  return { states, orphans, unreadable };
}

/** True when there is any pod (or unreadable state) to list. */
export function anyPods(p: NodePods): boolean {
  return p.states.length + p.orphans.length + p.unreadable.length > 0;
}

/** One attachment, for the listing: its pod (namespace/name) when known, container, interface, host veth, addresses. */
function describeState(s: AttachmentState): string {
  const id = cnfIdOf(s);
  return `${id === s.containerId ? '' : `${id} `}container ${s.containerId} ${s.ifname}: host ${s.hostIfname}, ${[s.ipv4, s.ipv6].filter(Boolean).join(' ') || 'no address'}`;
}

/** One line per pod, for the refusal and the dry run. */
export function describePods(p: NodePods): string[] {
  return [
    ...p.states.map(describeState),
    ...p.orphans.map((o) => `host ifindex ${o.ifindex}: ${o.addresses.join(' ') || 'no address'} (an endpoint entry without a state file)`),
    ...p.unreadable.map((f) => `${f}: an unreadable state file`),
  ];
}

/**
 * Whether pinDir holds afsteer's pins: 'absent', or 'present' — a real directory inside a bpf
 * filesystem, never the filesystem's root (removing that would remove every pin on the node);
 * anything else is refused.
 */
export function pinDirState(pinDir: string): 'absent' | 'present' {
  let st: Stats;
  try {
    st = lstatSync(pinDir);
  } catch {
    return 'absent';
  }
  if (!st.isDirectory()) throw new InstallRefusal(`pin dir ${pinDir} is ${fileKind(st)}, not a directory: not touched`);
  if (!onBpffs(pinDir)) throw new InstallRefusal(`pin dir ${pinDir} is not on a bpf filesystem: not touched (give --pin-dir)`);
  if (!onBpffs(dirname(pinDir)))
    throw new InstallRefusal(`pin dir ${pinDir} is the root of a bpf filesystem: not removed (it may hold others' pins)`);
  return 'present';
}

/** Refuses a stateDir that is not a real directory only root can write (nothing in it is removed then). */
export function checkStateDir(stateDir: string): void {
  let st: Stats;
  try {
    st = lstatSync(stateDir);
  } catch {
    return;
  }
  const p = st.isSymbolicLink() ? 'is a symbolic link' : dirProblem({ uid: st.uid, mode: st.mode, isDirectory: st.isDirectory() });
  if (p) throw new InstallRefusal(`state dir ${stateDir} ${p}: not touched`);
}

/**
 * Takes afsteer off every pod, under the node lock, with the plugin's own teardown (the code DEL
 * and GC run, src/cni/teardown.ts): afsteer's tc filters off the host veth (and the clsact qdisc
 * when afsteer created it and nothing else uses it), the bridge's afsteer_bridge_out once no
 * afsteer pod is left on it, the endpoint entry and its pairs, the pod's MTU back to what it was
 * before ADD (the room afsteer made for its outer header), and the state file. The pod's
 * addresses stay — the primary plugin's and those afsteer got from the delegated IPAM: the pod
 * may be using them, and their lease (in the IPAM store the primary plugin shares by default) is
 * released when the runtime deletes the pod. Endpoint entries without state: afsteer's filters
 * off that link and the entry removed. The pods are listed again under the lock, so one whose
 * ADD finished after the first listing is included.
 */
export async function detachPods(n: NodeAfsteer, say: (s: string) => void): Promise<void> {
  const { withLock } = await import('../util/lock');
  const { releaseBridgeOut, teardownAttachment } = await import('../cni/teardown');
  const { removeState } = await import('../node/attachments');
  const { detach } = await import('../bpf/tc');
  const { removeEndpoint } = await import('../bpf/steering');
  await withLock(nodeLockPath(n.stateDir), LOCK_TIMEOUT_MS, async () => {
    const pods = await findPods(n); // again, under the lock: an ADD that finished since the listing is included
    for (const s of pods.states) {
      say(`detach afsteer from ${describeState(s)}`);
      await teardownAttachment(n.pinDir, { ...s, addedAddresses: [] }, true);
      removeState(n.stateDir, s.containerId, s.ifname);
      await releaseBridgeOut(n.stateDir, s);
    }
    for (const o of pods.orphans) {
      say(`detach afsteer from host ifindex ${o.ifindex} (${o.addresses.join(' ')}: no state file)`);
      detach(o.ifindex, 'ingress');
      detach(o.ifindex, 'egress');
      removeEndpoint(n.pinDir, o.ifindex);
    }
  });
}

/**
 * Detaches afsteerd's echo reflector (tc ingress, handle 0xae), which afsteerd leaves attached
 * when it stops, from every interface with an address where the program attached is one pinned
 * under pinDir (of any build): a filter of someone else's at that handle is never touched. The
 * clsact qdisc stays (afsteerd does not record whether it made it; an empty one changes nothing).
 */
async function detachEchoReflector(pinDir: string, say: (s: string) => void): Promise<void> {
  const { ECHO_PROGRAM, ECHO_TC_HANDLE } = await import('../bpf/echo-reflector');
  const { closeFds, objectId, openPinned } = await import('../bpf/libbpf');
  const { detach, query } = await import('../bpf/tc');
  const { Rtnl } = await import('../net/rtnl');
  const ours = new Set<number>();
  const progs = join(pinDir, 'progs');
  for (const d of existsSync(progs) ? readdirSync(progs) : []) {
    const p = join(progs, d, ECHO_PROGRAM);
    if (!existsSync(p)) continue;
    const fd = openPinned(p);
    try {
      ours.add(objectId(fd));
    } finally {
      closeFds(fd);
    }
  }
  if (!ours.size) return;
  const host = Rtnl.host();
  try {
    for (const name of Object.keys(networkInterfaces())) {
      const link = await host.linkByName(name);
      const id = link && query(link.index, 'ingress', ECHO_TC_HANDLE);
      if (!link || id === undefined || !ours.has(id)) continue;
      detach(link.index, 'ingress', ECHO_TC_HANDLE);
      say(`detached afsteerd's echo reflector from ${name}`);
    }
  } finally {
    host.close();
  }
}

/**
 * Removes afsteer's pins (the whole pinDir: programs and maps) once afsteerd's echo reflector is
 * off the node's interfaces, and its state in the stateDir (attachment state files, the node
 * lock, afsteerd's pins file); the stateDir itself when that leaves it empty. Call once no pod
 * uses them.
 */
export async function removePinsAndState(n: NodeAfsteer, say: (s: string) => void): Promise<void> {
  if (pinDirState(n.pinDir) === 'present') {
    await detachEchoReflector(n.pinDir, say);
    rmSync(n.pinDir, { recursive: true });
    say(`removed the pins in ${n.pinDir}`);
  }
  checkStateDir(n.stateDir);
  const { PINS_FILE } = await import('../negotiator/pairs/pins');
  const gone = ['attachments', LOCK_FILE, PINS_FILE].filter((name) => {
    const p = join(n.stateDir, name);
    try {
      lstatSync(p);
    } catch {
      return false;
    }
    rmSync(p, { recursive: true });
    return true;
  });
  if (gone.length) say(`removed afsteer's state in ${n.stateDir} (${gone.join(', ')})`);
  try {
    rmdirSync(n.stateDir);
  } catch {
    // not empty (the install record, the executable's native addons, ...) or already gone
  }
}
