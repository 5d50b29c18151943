/** The daemon's answers to control-socket requests: `status`, `prefer` (operator pins) and the plugin's endpoint notification. */
import { log } from '../../util/log';
import type { PeerTable } from '../discovery/peers';
import type { LocalPods } from '../local/pods';
import type { Negotiation } from '../pairs/negotiation';
import type { PairTable } from '../pairs/pair-table';
import { type PinStore, preferTarget } from '../pairs/pins';

/** What the requests act on. */
export interface OperatorParts {
  peers: PeerTable;
  pairs: PairTable;
  local: LocalPods;
  pins: PinStore;
  negotiation: Negotiation;
  /** Everything `afsteerd status` shows. */
  status(): object;
  /** Re-reads the plugin's state files (an endpoint notification); no map resync. */
  rescanLocal(): void;
}

/** Handles one control-socket request. */
export function handleRequest(p: OperatorParts, req: Record<string, unknown>): Record<string, unknown> {
  switch (req.op) {
    case 'status':
      return { ok: true, ...p.status() };
    case 'prefer':
      return prefer(p, String(req.target ?? ''), String(req.family ?? ''));
    case 'endpoint':
      p.rescanLocal();
      return { ok: true, endpoints: p.local.size };
    default:
      return { ok: false, error: `unknown op ${JSON.stringify(req.op)}` };
  }
}

/** `afsteerd prefer`: pins a family for a peer node or a CNF ('auto' clears it); applied and told to the peers at once. */
export function prefer(p: OperatorParts, target: string, family: string): Record<string, unknown> {
  const fam = family === 'ipv4' ? 'IPv4' : family === 'ipv6' ? 'IPv6' : family === 'auto' ? 'auto' : undefined;
  if (!fam) return { ok: false, error: `family must be ipv4, ipv6 or auto, not ${JSON.stringify(family)}` };
  const kind = preferTarget(target, p.peers, p.local, p.pins);
  if (!kind) return { ok: false, error: `${JSON.stringify(target)} is neither a known peer node nor a known CNF id` };
  try {
    p.pins.set(kind, target, fam);
  } catch (err) {
    return { ok: false, error: `cannot persist the pin: ${(err as Error).message}` };
  }
  log.info('operator pin', { target, kind, family: fam });
  for (const peer of p.peers.values()) {
    p.negotiation.evaluatePeer(peer);
    p.negotiation.send(peer);
  }
  return { ok: true, target, kind, family: fam, pairs: [...p.pairs.values()].filter((x) => x.pin).length };
}
