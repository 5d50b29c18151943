/** This node's pods as afsteerd sees them, by CNF id and by host ifindex, re-read from the plugin's state files. */
import type { LocalEndpoint } from './endpoints-read';

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
