/** CNI STATUS: ready when ADD can succeed (bpffs usable, libbpf present, BPF object loads); else code 50. */
import { closeFds } from '../bpf/libbpf';
import { preparePins } from '../node/prepare-pins';
import { causeText } from '../util/describe-error';
import { CniCode, CniError } from './cni-error';
import type { NetConf } from './config';
import { withNodeLock } from './node-lock';

/** Runs STATUS (prints nothing when ready). */
export async function cmdStatus(conf: NetConf): Promise<undefined> {
  try {
    await withNodeLock(conf, async () => {
      const p = await preparePins(conf.pinDir, conf.stateDir, { swap: false });
      closeFds(p.fromPod, p.toPod, p.bridgeOut);
    });
  } catch (err) {
    if (err instanceof CniError && err.code === CniCode.TryAgainLater) throw err;
    throw new CniError(CniCode.NotAvailable, `afsteer is not ready: ${(err as Error).message}`, causeText((err as Error).cause), {
      cause: err,
    });
  }
  return undefined;
}
