/** This node's pods as afsteerd knows them: read from the plugin's state files. */

import { canonical } from '../../net/ip';
import { cnfIdOf, listStates } from '../../node/attachments';
import type { PodPolicy } from '../../policy/schema';
import { CnfIdSchema } from '../protocol/messages';

/** A local pod (one attachment). */
export interface LocalEndpoint {
  cnf: string;
  containerId: string;
  ifname: string;
  ifindex: number;
  ipv4?: string;
  ipv6?: string;
  /** The pod's own policy (plugin config / CNI_ARGS), if it has one. */
  policy?: PodPolicy;
}

/** Every local endpoint of the state dir, by CNF id (unreadable files are reported and skipped). */
export function readLocalEndpoints(stateDir: string, onError: (file: string, err: unknown) => void): Map<string, LocalEndpoint> {
  const out = new Map<string, LocalEndpoint>();
  for (const s of listStates(stateDir, onError)) {
    const cnf = cnfIdOf(s);
    if (!CnfIdSchema.safeParse(cnf).success) {
      onError(`${s.containerId}_${s.ifname}.json`, new Error(`CNF id ${JSON.stringify(cnf)} cannot travel in the protocol`));
      continue;
    }
    const policy = (s as { policy?: PodPolicy }).policy;
    out.set(cnf, {
      cnf,
      containerId: s.containerId,
      ifname: s.ifname,
      ifindex: s.hostIfindex,
      ...(s.ipv4 ? { ipv4: canonical(s.ipv4) } : {}),
      ...(s.ipv6 ? { ipv6: canonical(s.ipv6) } : {}),
      ...(policy ? { policy } : {}),
    });
  }
  return out;
}
