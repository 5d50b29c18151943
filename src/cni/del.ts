/** CNI DEL: remove exactly what ADD made; succeeds when any of it (or the netns) is already gone. */

import { type AttachmentState, loadState, removeState } from '../node/attachments';
import { causeText } from '../util/describe-error';
import { log } from '../util/log';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { ipamDel } from './ipam';
import { withNodeLock } from './node-lock';
import { notifyDaemon } from './notify';
import { releaseBridgeOut, teardownAttachment } from './teardown';

/** Runs DEL (prints nothing on success). The pod side is cleaned in the namespace recorded at ADD, not in CNI_NETNS. */
export async function cmdDel(conf: NetConf, env: CniEnv): Promise<undefined> {
  if (env.neverAdded) {
    // ADD refuses this id or name before doing anything, so nothing of afsteer's exists for it.
    log.info('nothing to delete: ADD would have refused this attachment', { reason: env.neverAdded });
    return undefined;
  }
  await withNodeLock(conf, async () => {
    let state: AttachmentState | undefined;
    try {
      state = loadState(conf.stateDir, env.containerId, env.ifname);
    } catch (err) {
      log.warn('ignoring unreadable state file on DEL', { error: causeText(err) });
    }
    if (state && env.netns && env.netns !== state.netns)
      log.warn('CNI_NETNS differs from the namespace recorded at ADD; only the recorded one is cleaned', {
        CNI_NETNS: env.netns,
        recorded: state.netns,
      });
    if (state) await teardownAttachment(conf.pinDir, state, true);
    else log.debug('no afsteer state for attachment; nothing to detach', { container: env.containerId, ifname: env.ifname });
    // IPAM DEL is idempotent and must run even without state (an ADD may have died after allocating).
    if (conf.ipam) ipamDel(conf, env);
    removeState(conf.stateDir, env.containerId, env.ifname);
    if (state) await releaseBridgeOut(conf.stateDir, state);
    log.info('detached', { container: env.containerId, ifname: env.ifname, hadState: Boolean(state) });
  });
  await notifyDaemon(conf.daemonSocket, 'del', env.containerId, env.ifname);
  return undefined;
}
