/** CNI GC: remove every afsteer attachment not in the runtime's list of valid ones; forward GC to the delegated IPAM. */
import * as z from 'zod/mini';
import { bpfObject, programPinDir } from '../bpf/programs';
import { listStates, removeState } from '../node/attachments';
import { removeUnusedProgramDirs } from '../node/program-swap';
import { causeText } from '../util/describe-error';
import { log } from '../util/log';
import { CniCode, CniError } from './cni-error';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { execIpam } from './ipam';
import { withNodeLock } from './node-lock';
import { releaseBridgeOut, teardownAttachment } from './teardown';

const AttachmentRef = z.looseObject({ containerID: z.string(), ifname: z.string() });
const GcFields = z.looseObject({
  'cni.dev/valid-attachments': z.optional(z.array(AttachmentRef)),
  'cni.dev/attachments': z.optional(z.array(AttachmentRef)),
});

/**
 * The attachments of network that GC removes (pure): those not in the runtime's valid list. A
 * missing list means "nothing known", not "nothing valid": none; an explicit empty list: all.
 */
export function staleAttachments<T extends { network: string; containerId: string; ifname: string }>(
  states: T[],
  network: string,
  valid: readonly { containerID: string; ifname: string }[] | undefined,
): T[] {
  if (!valid) return [];
  const keep = new Set(valid.map((a) => `${a.containerID}/${a.ifname}`));
  return states.filter((s) => s.network === network && !keep.has(`${s.containerId}/${s.ifname}`));
}

/** Runs GC (prints nothing on success). */
export async function cmdGc(conf: NetConf, env: CniEnv): Promise<undefined> {
  const parsed = GcFields.safeParse(conf);
  if (!parsed.success) throw new CniError(CniCode.InvalidConfig, `invalid GC attachment list: ${z.prettifyError(parsed.error)}`);
  const valid = parsed.data['cni.dev/valid-attachments'] ?? parsed.data['cni.dev/attachments'];
  if (!valid) log.warn('GC without cni.dev/valid-attachments (or cni.dev/attachments): no attachment is known to be stale, none removed');
  await withNodeLock(conf, async () => {
    const states = listStates(conf.stateDir, (f, err) => log.warn('skipping unreadable state file', { file: f, error: causeText(err) }));
    for (const s of staleAttachments(states, conf.name, valid)) {
      log.info('collecting stale attachment', { container: s.containerId, ifname: s.ifname });
      await teardownAttachment(conf.pinDir, s, false);
      removeState(conf.stateDir, s.containerId, s.ifname);
      await releaseBridgeOut(conf.stateDir, s);
    }
    pruneStalePrograms(conf);
  });
  if (conf.ipam && valid) forwardGc(conf, env);
  return undefined;
}

/** Removes pinned programs of older BPF objects that no remaining attachment uses. */
function pruneStalePrograms(conf: NetConf): void {
  for (const dir of removeUnusedProgramDirs(conf.pinDir, conf.stateDir, programPinDir(conf.pinDir, bpfObject().hash)))
    log.info('removed stale program pins', { dir });
}

/** Forwards GC to the delegated IPAM plugin when it speaks CNI 1.1.0 (older ones have no GC). */
function forwardGc(conf: NetConf, env: CniEnv): void {
  const info = execIpam('VERSION', conf, env, JSON.stringify({ cniVersion: conf.cniVersion })) as
    | { supportedVersions?: string[] }
    | undefined;
  if (!info?.supportedVersions?.includes('1.1.0')) {
    log.info('delegated IPAM has no GC (CNI < 1.1.0); not forwarded', { ipam: conf.ipam?.type });
    return;
  }
  const { cniVersion, name, ipam } = conf;
  const valid = (conf as Record<string, unknown>)['cni.dev/valid-attachments'];
  execIpam('GC', conf, env, JSON.stringify({ cniVersion, name, ipam, ...(valid ? { 'cni.dev/valid-attachments': valid } : {}) }));
}
