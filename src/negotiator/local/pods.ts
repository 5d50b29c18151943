/** This node's pods as afsteerd knows them: read from the plugin's state files, kept by CNF id and by host ifindex, re-read on change. */
import { canonical } from '../../net/ip';
import { cnfIdOf, listStates } from '../../node/attachments';
import type { PodPolicy } from '../../policy/schema';
import { CnfIdSchema } from '../protocol/messages';

/** A local pod (one attachment). */
export interface LocalEndpoint {
  cnf: string;
  containerId: string;
  ifname: string;
  /** The endpoint key in the maps (a host veth's ifindex, or an in-pod attachment's key). */
  ifindex: number;
  /** The network the attachment is on (its conflist's name). */
  network?: string;
  ipv4?: string;
  ipv6?: string;
  /** The pod's own policy (plugin config / CNI_ARGS), if it has one. */
  policy?: PodPolicy;
}

/** Every attachment of the state dir, each a local endpoint of its network (unreadable files are reported and skipped). */
export function readLocalAttachments(stateDir: string, onError: (file: string, err: unknown) => void): LocalEndpoint[] {
  const out: LocalEndpoint[] = [];
  for (const s of listStates(stateDir, onError)) {
    const cnf = cnfIdOf(s);
    if (!CnfIdSchema.safeParse(cnf).success) {
      onError(`${s.containerId}_${s.ifname}.json`, new Error(`CNF id ${JSON.stringify(cnf)} cannot travel in the protocol`));
      continue;
    }
    const policy = (s as { policy?: PodPolicy }).policy;
    out.push({
      cnf,
      containerId: s.containerId,
      ifname: s.ifname,
      ifindex: s.endpoint,
      network: s.network,
      ...(s.ipv4 ? { ipv4: canonical(s.ipv4) } : {}),
      ...(s.ipv6 ? { ipv6: canonical(s.ipv6) } : {}),
      ...(policy ? { policy } : {}),
    });
  }
  return out;
}

/** Local endpoints by CNF id: one network's attachments (accept), a pod's one attachment there. */
export function byCnf(
  attachments: readonly LocalEndpoint[],
  accept: (l: LocalEndpoint) => boolean = () => true,
): Map<string, LocalEndpoint> {
  const out = new Map<string, LocalEndpoint>();
  for (const l of attachments) if (accept(l)) out.set(l.cnf, l);
  return out;
}

/** Every local endpoint of the state dir, by CNF id (unreadable files are reported and skipped). */
export function readLocalEndpoints(stateDir: string, onError: (file: string, err: unknown) => void): Map<string, LocalEndpoint> {
  return byCnf(readLocalAttachments(stateDir, onError));
}

/** Reads the current local endpoints (from the state dir, or from a test). */
export type LocalReader = () => Map<string, LocalEndpoint>;

/** What changed in one re-read. */
export interface LocalChange {
  /** Pods gone, or whose interface or addresses changed (their pairs must go). */
  gone: string[];
  /** Pods whose own policy changed. */
  policyChanged: LocalEndpoint[];
  /** The set of CNF ids changed (announce again). */
  membershipChanged: boolean;
}

/** The local pods. */
export class LocalPods {
  private byCnf = new Map<string, LocalEndpoint>();
  private byIfindex = new Map<number, LocalEndpoint>();

  constructor(private readonly read: LocalReader) {}

  /** Re-reads the pods and says what changed. */
  rescan(): LocalChange {
    const next = this.read();
    const gone: string[] = [];
    for (const [cnf, l] of this.byCnf) {
      const n = next.get(cnf);
      if (!(n && n.ifindex === l.ifindex && n.ipv4 === l.ipv4 && n.ipv6 === l.ipv6)) gone.push(cnf);
    }
    const policyChanged: LocalEndpoint[] = [];
    for (const [cnf, n] of next) {
      const old = this.byCnf.get(cnf);
      if (old && n.policy && JSON.stringify(old.policy) !== JSON.stringify(n.policy)) policyChanged.push(n);
    }
    const membershipChanged = next.size !== this.byCnf.size || [...next.keys()].some((k) => !this.byCnf.has(k));
    this.byCnf = next;
    this.byIfindex = new Map([...next.values()].map((l) => [l.ifindex, l]));
    return { gone, policyChanged, membershipChanged };
  }

  /** The pod with this CNF id. */
  get(cnf: string): LocalEndpoint | undefined {
    return this.byCnf.get(cnf);
  }

  /** The pod on this host interface. */
  byHostIfindex(ifindex: number): LocalEndpoint | undefined {
    return this.byIfindex.get(ifindex);
  }

  /** Every local pod. */
  values(): IterableIterator<LocalEndpoint> {
    return this.byCnf.values();
  }

  /** Number of local pods. */
  get size(): number {
    return this.byCnf.size;
  }
}
