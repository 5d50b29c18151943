/** The read-only view of a running daemon's parts that the operator side (metrics, history, the page) reads. */
import type { Clock } from '../clock';
import type { DaemonCounters } from '../counters';
import type { DaemonConfig } from '../daemon-config';
import type { PeerTable } from '../discovery/peers';
import type { PairTable } from '../pairs/pair-table';
import type { PinStore } from '../pairs/pins';
import type { SwitchLog } from '../pairs/switch-log';
import type { Prober } from '../probing/prober';

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
}
