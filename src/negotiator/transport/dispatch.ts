/**
 * The receive dispatch: what each authenticated message does once the receiver let it through
 * (announcements to discovery, negotiation messages to negotiation, probes reflected, probe and
 * echo replies to the prober). Each handler answers the receiver's verdict (handled, malformed,
 * or from an unknown peer), which the receiver counts.
 */
import type { Clock } from '../clock';
import { count, type DaemonCounters } from '../counters';
import type { Discovery } from '../discovery/announcer';
import type { PeerTable } from '../discovery/peers';
import type { Negotiation } from '../pairs/negotiation';
import type { Prober } from '../probing/prober';
import { decodeEcho, echoPortOf } from '../protocol/echo';
import type { Trust } from '../trust/trust';
import type { ReceiveHandlers } from './receiver';
import type { Sender } from './sender';

/** The parts the dispatch hands messages to. */
export interface DispatchParts {
  clock: Clock;
  counters: DaemonCounters;
  sender: Sender;
  peers: PeerTable;
  discovery: Discovery;
  negotiation: Negotiation;
  prober: Prober;
  trust: Trust;
}

/** The receiver's handlers over the daemon's parts. */
export function receiveHandlers(p: DispatchParts): ReceiveHandlers {
  const { clock, peers, prober, negotiation } = p;
  return {
    announce: (f, a, src) => {
      // A certified node announces only the control addresses its certificate names.
      if (!p.trust.addressesCertified(f.cert, a.addresses)) return 'uncertified-address';
      p.discovery.receive(f.node, a, src, f.payload, f.epoch);
      return true;
    },
    announceRepeat: (f, src) => {
      const repeat = p.discovery.repeated(f.node, f.payload, src, f.epoch);
      if (repeat) count(p.counters.events, 'announce-repeat');
      return repeat;
    },
    negotiate: (f, m, src) => {
      const peer = peers.get(f.node);
      if (!peer) return 'unknown-peer';
      peers.heard(peer, src.family, clock.now());
      negotiation.receive(peer, m, f.epoch);
      return true;
    },
    probe: (f, _p, src) => {
      const peer = peers.get(f.node);
      if (peer) peers.heard(peer, src.family, clock.now());
      // Reflect at once, over the family it came in on, to where it came from.
      p.sender.to(src.family, src.address, src.port, 'probeReply', f.payload, f.node);
      return true;
    },
    echo: (b, src, agoMs) => {
      const e = decodeEcho(b);
      if (!e || e.family !== src.family) return false;
      const peer = peers.byAddress(src.family, src.address);
      if (!peer) return 'unknown-peer';
      // From the peer's echo port, with this path's nonce and an id in flight (prober.reply).
      if (src.port !== echoPortOf(peer.port) || !peer.paths[src.family]) return false;
      const r = prober.reply(peer, src.family, e, clock.now() - agoMs);
      if (r === 'foreign') return false;
      if (r === 'recovered') negotiation.evaluatePeer(peer);
      return true;
    },
    probeReply: (f, pr, src, agoMs) => {
      const peer = peers.get(f.node);
      if (!peer) return 'unknown-peer';
      if (!peer.paths[src.family]) return true;
      const r = prober.reply(peer, src.family, pr, clock.now() - agoMs);
      if (r === 'foreign') return false;
      peers.heard(peer, src.family, clock.now());
      if (r === 'recovered') negotiation.evaluatePeer(peer);
      return true;
    },
  };
}
