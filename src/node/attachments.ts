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
import { STATE_LAYOUT, StateLayoutError, stateInOwnLayout } from './state-layout';

/** Everything afsteer did for one attachment (container id + ifname). */
export const AttachmentStateSchema = z.object({
  containerId: z.string(),
  ifname: z.string(),
  netns: z.string(),
  /** Identity (st_dev, st_ino) of the pod's network namespace at ADD: DEL touches the pod side only in that namespace. */
  netnsId: z.optional(z.object({ dev: z.number(), ino: z.number() })),
  network: z.string(),
  hostIfindex: z.number().check(z.int()),
  hostIfname: z.string(),
  podIfindex: z.number().check(z.int()),
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

/** One attachment's state. */
export type AttachmentState = z.infer<typeof AttachmentStateSchema>;

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
  writeFileAtomic(statePath(stateDir, s.containerId, s.ifname), JSON.stringify({ ...s, layout: { ...STATE_LAYOUT } }, null, 2) + '\n');
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
