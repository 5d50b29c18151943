/** The node-wide lock around afsteer's shared state (BPF pins, maps, state dir). */
import { nodeLockPath } from '../defaults';
import { withLock } from '../util/lock';
import { CniCode, CniError } from './cni-error';
import type { NetConf } from './config';

/** Runs fn holding the node lock in conf.stateDir; a timeout is CNI code 11 (try again later). */
export async function withNodeLock<T>(conf: NetConf, fn: () => Promise<T>): Promise<T> {
  try {
    return await withLock(nodeLockPath(conf.stateDir), conf.lockTimeoutMs, fn);
  } catch (err) {
    if ((err as { code?: string }).code === 'ELOCKTIMEOUT') {
      throw new CniError(CniCode.TryAgainLater, `afsteer node lock busy: ${(err as Error).message}`, undefined, { cause: err });
    }
    throw err;
  }
}
