/** The read-only view of a running daemon's parts that the operator side (metrics, history, the page) reads. */
import type { EchoRefusal } from '../../bpf/echo-maps';
import type { PairConntrackStats } from '../../net/conntrack';
import type { Clock } from '../clock';
import type { DaemonCounters } from '../counters';
import type { DaemonConfig } from '../daemon-config';
import type { PeerTable } from '../discovery/peers';
import type { PairTable } from '../pairs/pair-table';
import type { PinStore } from '../pairs/pins';
import type { SwitchLog } from '../pairs/switch-log';
import type { EchoPeerList, KernelEcho } from '../probing/echo-allow';
import type { EchoReflector, FallbackRefusal } from '../probing/echo-fallback';
import type { Prober } from '../probing/prober';
import type { Trust } from '../trust/trust';

/** Read-only views of a daemon's parts (metrics, history, the page). */
export interface DaemonParts {
  cfg: DaemonConfig;
  clock: Clock;
  peers: PeerTable;
  pairs: PairTable;
  prober: Prober;
  switches: SwitchLog;
  counters: DaemonCounters;
  sendErrors: { 4: number; 6: number };
  pins: PinStore;
  /** Certificates, claims refused, revocation (identity metrics). */
  trust: Trust;
  /** The echo reflectors' allow-list and refusals. */
  echo: () => EchoView;
  /** The per-flow conntrack marking of switched pairs (undefined: off). */
  conntrack: () => PairConntrackStats | undefined;
}

/** What the echo reflectors did (metrics): the allow-list, the kernel's and the userspace fallback's counts. */
export interface EchoView {
  allowed: number;
  list: EchoPeerList['stats'];
  kernel?: { reflected: number; refused: Record<EchoRefusal, number> };
  userspace?: { reflected: number; refused: Record<FallbackRefusal, number> };
}

/** The echo view over the allow-list, the kernel reflector (when attached) and the userspace one (when running). */
export function echoView(list: EchoPeerList, kernel: KernelEcho | undefined, userspace: EchoReflector | undefined): EchoView {
  return { allowed: list.size, list: list.stats, kernel: kernel?.counts(), userspace: userspace?.stats };
}
