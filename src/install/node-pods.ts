/**
 * afsteer on the live node, for `afsteer install --uninstall`: the pods it is attached to (the
 * state files in the stateDir, and endpoint map entries in the pinDir that have none), taking it
 * off them with the plugin's own DEL (--force), and removing its pins and state afterwards.
 * The pinDir and stateDir are the node's, not --root's files: they come from --pin-dir and
 * --state-dir, else from the afsteer entry of the installed conflist, else the defaults — the
 * last two taken beneath --root (the node's / as the installer sees it).
 */
import { lstatSync, rmdirSync, rmSync, type Stats, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MAPS } from '../bpf/maps-layout';
import type { NetConf } from '../cni/config';
import { pathProblem } from '../cni/path-keys';
import { DEFAULT_PIN_DIR, DEFAULT_STATE_DIR, LOCK_FILE } from '../defaults';
import { type AttachmentState, cnfIdOf, listStates } from '../node/attachments';
import { describeError } from '../util/describe-error';
import { dirProblem, fileKind } from '../util/safe-fs';
import { InstallRefusal } from './plan';

/** The node's afsteer directories, and the installed conflist's afsteer entry (for DEL's IPAM release). */
export interface NodeAfsteer {
  pinDir: string;
  stateDir: string;
  /** The network the installer chained afsteer into: its name, cniVersion and afsteer entry. */
  network?: { name: string; cniVersion: string; entry: Record<string, unknown> };
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

const BPF_FS_MAGIC = 0xcafe4a11;
const onBpffs = (p: string): boolean => Number(statfsSync(p).type) === BPF_FS_MAGIC;

/** Checks a --pin-dir/--state-dir value (absolute, no '.' or '..'). */
function flagPath(flag: string, text: string): string {
  const bad = pathProblem(text);
  if (bad) throw new InstallRefusal(`--${flag} ${text} ${bad}`);
  return text;
}

/** The node's pinDir and stateDir for an uninstall (see the file's head), from flags and the installed conflist's text. */
export function nodeAfsteer(root: string, flags: { pinDir?: string; stateDir?: string }, conflist?: string): NodeAfsteer {
  let network: NodeAfsteer['network'];
  try {
    const list = JSON.parse(conflist ?? 'null') as { name?: unknown; cniVersion?: unknown; plugins?: unknown[] } | null;
    const entry = list?.plugins?.find((p) => p && typeof p === 'object' && (p as { type?: unknown }).type === 'afsteer');
    if (entry && typeof list?.name === 'string')
      network = {
        name: list.name,
        cniVersion: typeof list.cniVersion === 'string' ? list.cniVersion : '1.0.0',
        entry: entry as Record<string, unknown>,
      };
  } catch {
    // not JSON any more: the defaults
  }
  const configured = (key: 'pinDir' | 'stateDir', dflt: string): string => {
    const v = network?.entry[key];
    return join(root, typeof v === 'string' && pathProblem(v) === undefined ? v : dflt);
  };
  return {
    pinDir: flags.pinDir !== undefined ? flagPath('pin-dir', flags.pinDir) : configured('pinDir', DEFAULT_PIN_DIR),
    stateDir: flags.stateDir !== undefined ? flagPath('state-dir', flags.stateDir) : configured('stateDir', DEFAULT_STATE_DIR),
    ...(network ? { network } : {}),
  };
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

/** One line per pod, for the refusal and the dry run. */
export function describePods(p: NodePods): string[] {
  return [
    ...p.states.map((s) => {
      const id = cnfIdOf(s);
      return `${id === s.containerId ? '' : `${id} `}container ${s.containerId} ${s.ifname}: host ${s.hostIfname}, ${[s.ipv4, s.ipv6].filter(Boolean).join(' ') || 'no address'}`;
    }),
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
 * Takes afsteer off every pod with the plugin's own DEL (src/cni/del.ts, under the node lock):
 * its filters off the host veth (and the clsact qdisc when afsteer created it and nothing else
 * uses it), the bridge's afsteer_bridge_out once no afsteer pod is left on it, the endpoint
 * entry, and in the pod what ADD added — the delegated family's addresses, released to the
 * delegated IPAM (found in cniPath) — and the MTU put back; the primary plugin's addresses,
 * routes and the veth stay. Endpoint entries without state: afsteer's filters off that link
 * and the entry removed.
 */
export async function detachPods(n: NodeAfsteer, pods: NodePods, cniPath: string[], say: (s: string) => void): Promise<void> {
  const { configureLog } = await import('../util/log');
  const { parseNetConf } = await import('../cni/config');
  const { cmdDel } = await import('../cni/del');
  configureLog({ level: 'warn' }); // the installer says what it does; the plugin's info lines would repeat it
  const dirs = { pinDir: n.pinDir, stateDir: n.stateDir };
  for (const s of pods.states) {
    say(`detach afsteer from ${describePods({ states: [s], orphans: [], unreadable: [] })[0]}`);
    const base = { cniVersion: n.network?.cniVersion ?? '1.0.0', name: s.network, type: 'afsteer' };
    let conf: NetConf;
    try {
      conf = parseNetConf(JSON.stringify({ ...base, ...(n.network?.name === s.network ? n.network.entry : {}), ...dirs }));
    } catch {
      conf = parseNetConf(JSON.stringify({ ...base, ...dirs }));
    }
    if (s.delegatedIpam && !conf.ipam)
      say(`  its delegated addresses are removed, but their IPAM lease stays: network ${s.network} is not the conflist installed`);
    await cmdDel(conf, { command: 'DEL', containerId: s.containerId, netns: s.netns, ifname: s.ifname, args: new Map(), path: cniPath });
  }
  if (pods.orphans.length) {
    const { detach } = await import('../bpf/tc');
    const { removeEndpoint } = await import('../bpf/steering');
    for (const o of pods.orphans) {
      say(`detach afsteer from host ifindex ${o.ifindex} (${o.addresses.join(' ')}: no state file)`);
      detach(o.ifindex, 'ingress');
      detach(o.ifindex, 'egress');
      removeEndpoint(n.pinDir, o.ifindex);
    }
  }
}

/**
 * Removes afsteer's pins (the whole pinDir: programs and maps) and its state in the stateDir
 * (attachment state files, the node lock, afsteerd's pins file); the stateDir itself when that
 * leaves it empty. Call once no pod uses them.
 */
export async function removePinsAndState(n: NodeAfsteer, say: (s: string) => void): Promise<void> {
  if (pinDirState(n.pinDir) === 'present') {
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
