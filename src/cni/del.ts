/** CNI DEL: remove exactly what ADD made; succeeds when any of it (or the netns) is already gone. */
import { existsSync } from 'node:fs';
import { log } from '../util/log';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { ipamDel } from './ipam';
import { withNodeLock } from './node-lock';
import { loadState, removeState } from './state';
import { teardownAttachment } from './teardown';

/** Runs DEL (prints nothing on success). */
export async function cmdDel(conf: NetConf, env: CniEnv): Promise<undefined> {
  await withNodeLock(conf, async () => {
    let state;
    try {
      state = loadState(conf.stateDir, env.containerId, env.ifname);
    } catch (err) {
      log.warn('ignoring unreadable state file on DEL', { error: (err as Error).message });
    }
    if (state) await teardownAttachment(conf.pinDir, state, env.netns && existsSync(env.netns) ? env.netns : undefined);
    else log.debug('no afsteer state for attachment; nothing to detach', { container: env.containerId, ifname: env.ifname });
    // IPAM DEL is idempotent and must run even without state (an ADD may have died after allocating).
    if (conf.ipam) ipamDel(conf, env);
    removeState(conf.stateDir, env.containerId, env.ifname);
    log.info('detached', { container: env.containerId, ifname: env.ifname, hadState: Boolean(state) });
  });
  return undefined;
}
