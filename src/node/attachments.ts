/**
 * Per-attachment state files (what ADD did, so DEL/CHECK/GC can undo or verify exactly that): the
 * plugin writes them, `afsteer show`/`steer` and afsteerd read them.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { PodPolicySchema } from '../policy/schema';
import { writeFileAtomic } from '../util/atomic-file';
import { ensureTrustedDir, fileKind, readOwnFile, UnsafePathError } from '../util/safe-fs';
import { layoutOfState, StateLayoutError, stateInOwnLayout } from './state-layout';

/** Where an attachment's programs run: on the pod's host-side veth, or inside the pod's namespace on its own interface (no host-side veth: macvlan, ipvlan, host-device). */
export const PLACEMENTS = ['host-veth', 'pod'] as const;
export type Placement = (typeof PLACEMENTS)[number];

const int = () => z.number().check(z.int());

/** Everything afsteer did for one attachment (container id + ifname), as written. */
const AttachmentFileSchema = z.object({
  containerId: z.string(),
  ifname: z.string(),
  netns: z.string(),
  /** Identity (st_dev, st_ino) of the pod's network namespace at ADD: DEL touches the pod side only in that namespace. */
  netnsId: z.optional(z.object({ dev: z.number(), ino: z.number() })),
  network: z.string(),
  /** Where the programs run; absent (state written before in-pod attachments existed): host-veth. */
  placement: z.optional(z.enum(PLACEMENTS)),
  /**
   * The endpoint's key in the maps (afsteer_endpoints, the routes' local half): the host veth's
   * ifindex, or, placement "pod", EP_KEY_POD | the attachment's id (the classid minor of its tc
   * filters). Absent (older state): hostIfindex.
   */
  endpoint: z.optional(int()),
  /** The host-side veth (placement host-veth only). */
  hostIfindex: z.optional(int()),
  hostIfname: z.optional(z.string()),
  podIfindex: int(),
  /** placement pod: the interface's parent (macvlan, ipvlan) in the host's namespace, whose MTU bounds the pod's. */
  parent: z.optional(z.object({ ifindex: int(), name: z.string(), mtu: int() })),
  /**
   * placement pod without a parent (host-device: the device is the wire and keeps its MTU): the
   * MTU afsteer put on the pod's routes through the interface, and those routes (dst CIDRs).
   */
  routeMtu: z.optional(z.object({ mtu: int(), routes: z.array(z.string()) })),
  ipv4: z.optional(z.string()),
  ipv6: z.optional(z.string()),
  podNamespace: z.optional(z.string()),
  podName: z.optional(z.string()),
  /** The pod's negotiation policy, when the config or CNI_ARGS gave one (afsteerd reads it). */
  policy: z.optional(PodPolicySchema),
  createdClsact: z.boolean(),
  /** The bridge the host veth is a port of, where ADD put afsteer_bridge_out; createdClsact: its clsact qdisc is afsteer's. */
  bridge: z.optional(z.object({ ifindex: z.number().check(z.int()), name: z.string(), createdClsact: z.boolean() })),
  progDir: z.string(),
  /** Addresses afsteer added in the pod (delegated IPAM), as CIDRs. */
  addedAddresses: z.array(z.string()),
  /** True when afsteer allocated from the delegated IPAM plugin. */
  delegatedIpam: z.boolean(),
  mtu: z.object({ before: z.number().check(z.int()), after: z.number().check(z.int()) }),
  createdAt: z.string(),
  /** The file's layout (src/node/state-layout.ts); absent: layout 1. */
  layout: z.optional(z.object({ version: z.number().check(z.int()), readableFrom: z.number().check(z.int()) })),
});

/**
 * Everything afsteer did for one attachment, as read: `endpoint` and `placement` always set (an
 * older file, written before in-pod attachments, is a host-veth one keyed by its hostIfindex); a
 * file with neither an endpoint nor a host veth is refused.
 */
export const AttachmentStateSchema = z.pipe(
  AttachmentFileSchema.check(
    z.refine((s) => s.endpoint !== undefined || s.hostIfindex !== undefined, 'needs endpoint or hostIfindex'),
    z.refine((s) => (s.placement ?? 'host-veth') !== 'host-veth' || (s.hostIfindex !== undefined && s.hostIfname !== undefined), {
      message: 'a host-veth attachment needs hostIfindex and hostIfname',
    }),
  ),
  z.transform((s) => ({ ...s, placement: s.placement ?? ('host-veth' as Placement), endpoint: (s.endpoint ?? s.hostIfindex)! })),
);

/** One attachment's state. */
export type AttachmentState = z.output<typeof AttachmentStateSchema>;

/** How an attachment shows in listings: its host veth's name, or "ifname@container" for one inside the pod. */
export function attachmentLabel(s: Pick<AttachmentState, 'placement' | 'hostIfname' | 'ifname' | 'containerId'>): string {
  return s.placement === 'host-veth' && s.hostIfname ? s.hostIfname : `${s.ifname}@${s.containerId.slice(0, 12)}`;
}

/** A pod's CNF id: K8S_POD_NAMESPACE/K8S_POD_NAME when the runtime gave them, else its container id. */
export function cnfIdOf(s: Pick<AttachmentState, 'containerId' | 'podNamespace' | 'podName'>): string {
  return s.podNamespace && s.podName ? `${s.podNamespace}/${s.podName}` : s.containerId;
}

function dir(stateDir: string): string {
  return join(stateDir, 'attachments');
}

/** The attachments directory when it exists and is a real directory; throws when something else is there. */
function existingDir(stateDir: string): string | undefined {
  const d = dir(stateDir);
  try {
    const st = lstatSync(d);
    if (!st.isDirectory()) throw new UnsafePathError(d, `is ${fileKind(st)}, not a directory`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return d;
}

/** File name of an attachment's state (container ids and ifnames are validated, so this is path-safe). */
export function statePath(stateDir: string, containerId: string, ifname: string): string {
  return join(dir(stateDir), `${containerId}_${ifname}.json`);
}

/** Writes an attachment's state atomically. */
export function saveState(stateDir: string, s: AttachmentState): void {
  ensureTrustedDir(dir(stateDir));
  writeFileAtomic(statePath(stateDir, s.containerId, s.ifname), JSON.stringify({ ...s, layout: layoutOfState(s) }, null, 2) + '\n');
}

/** Reads an attachment's state, or undefined when there is none; a corrupt file is an error. */
export function loadState(stateDir: string, containerId: string, ifname: string): AttachmentState | undefined {
  if (!existingDir(stateDir)) return undefined;
  const p = statePath(stateDir, containerId, ifname);
  let text: string;
  try {
    text = readOwnFile(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read state file ${p}`, { cause: err });
  }
  try {
    return AttachmentStateSchema.parse(stateInOwnLayout(JSON.parse(text)));
  } catch (err) {
    if (err instanceof StateLayoutError) throw new StateLayoutError(`state file ${p}: ${err.message}`, { cause: err });
    throw new Error(`state file ${p} is corrupt`, { cause: err });
  }
}

/** Removes an attachment's state; already gone is fine. */
export function removeState(stateDir: string, containerId: string, ifname: string): void {
  rmSync(statePath(stateDir, containerId, ifname), { force: true });
}

/** Every recorded attachment (corrupt files are reported through onError and skipped). */
export function listStates(stateDir: string, onError: (file: string, err: unknown) => void = () => {}): AttachmentState[] {
  let files: string[];
  const d = existingDir(stateDir);
  if (!d) return [];
  try {
    files = readdirSync(d).filter((f) => f.endsWith('.json') && !f.startsWith('.'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: AttachmentState[] = [];
  for (const f of files) {
    try {
      out.push(AttachmentStateSchema.parse(stateInOwnLayout(JSON.parse(readOwnFile(join(d, f))))));
    } catch (err) {
      onError(f, err);
    }
  }
  return out;
}
