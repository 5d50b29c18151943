/** What status and the start-up log say of one network's negotiator (none: a node with one network). */
import type { NetworkIdentity } from '../control/status-report';
import type { NetworkRole } from '../daemon-deps';

/** The network part of `afsteerd status`, or undefined on a node with one network. */
export function networkStatus(n: NetworkRole | undefined): NetworkIdentity | undefined {
  if (!n) return undefined;
  const note =
    n.measuredBy === 'primary'
      ? "no addresses of its own on this network: probed and negotiated over the primary network's addresses (the primary's measurements)"
      : undefined;
  return { ...(n.name !== undefined ? { name: n.name } : {}), primary: n.primary, measuredBy: n.measuredBy, ...(note ? { note } : {}) };
}

/** The start-up log line's message and the network fields it carries. */
export function startedLine(n: NetworkRole | undefined): { msg: string; fields: Record<string, unknown> } {
  if (!n) return { msg: 'afsteerd started', fields: {} };
  return {
    msg: n.primary ? 'afsteerd started' : 'network negotiator started',
    fields: { network: n.name ?? '(primary)', measuredBy: n.measuredBy },
  };
}
