/** The last switches of this node's sending wires (status and logs), and how many there were. */
import type { WireName } from '../../bpf/maps-layout';

/** One recorded switch. */
export interface SwitchEvent {
  at: string;
  pair: string;
  peer: string;
  from: WireName;
  to: WireName;
  reason: string;
}

/** Switches kept for status. */
export const SWITCHES_KEPT = 100;

/** A bounded log of switches with a total. */
export class SwitchLog {
  private readonly events: SwitchEvent[] = [];
  /** Every switch since start-up. */
  total = 0;
  /** Called with each switch as it is recorded (metrics, history). */
  readonly listeners: ((ev: SwitchEvent) => void)[] = [];

  /** Records one switch. */
  add(ev: SwitchEvent): void {
    this.events.push(ev);
    this.total++;
    if (this.events.length > SWITCHES_KEPT) this.events.shift();
    for (const l of this.listeners) l(ev);
  }

  /** The last n switches, oldest first. */
  last(n: number): SwitchEvent[] {
    return this.events.slice(-n);
  }
}
