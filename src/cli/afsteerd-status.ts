/** `afsteerd status [--json] [--socket PATH]`: asks a running afsteerd for peers, pairs and switches, and shows them. */
import { controlRequest } from '../control/client';
import { DEFAULT_CONTROL_SOCKET } from '../defaults';
import { describeError } from '../util/describe-error';
import { printable, table } from './text';

/** A field of the daemon's answer: untrusted JSON, each value read with String() or a check, never trusted for its type. */
// biome-ignore lint/suspicious/noExplicitAny: the answer is read field by field; a schema here would duplicate afsteerd's StatusReport across the layering rule
type Loose = any;

/** Printable text for lines outside the tables (those escape each cell themselves). */
const clean = (s: unknown): string => printable(String(s));

/** Renders a status answer as text. */
export function renderStatus(s: Record<string, Loose>): string {
  let out = `${s.network?.name !== undefined && s.network.primary ? `network ${clean(s.network.name)} (primary)  ` : ''}node ${clean(s.node)}  epoch ${clean(s.epoch)}  up ${Math.round(s.uptimeMs / 1000)}s  ${clean(s.addresses?.ipv4 ?? '-')} ${clean(s.addresses?.ipv6 ?? '-')} port ${s.port}\n`;
  out += `\nlocal pods: ${(s.endpoints ?? []).length}\n`;
  out += table(
    ['POD', 'IFINDEX', 'IPV4', 'IPV6', 'POLICY'],
    (s.endpoints ?? []).map((e: Loose) => [
      String(e.cnf),
      String(e.ifindex),
      String(e.ipv4 ?? '-'),
      String(e.ipv6 ?? '-'),
      String(e.policy),
    ]),
  );
  out += `\npeers: ${(s.peers ?? []).length}\n`;
  const fam = (f: Loose) =>
    f
      ? `${f.state} rtt ${f.latency_ms ?? '-'}ms jit ${f.jitter_ms ?? '-'}ms loss ${f.packet_loss !== undefined ? (f.packet_loss * 100).toFixed(1) : '-'}%`
      : '-';
  out += table(
    ['PEER', 'HEARD', 'PODS', 'IPV4', 'IPV6'],
    (s.peers ?? []).map((p: Loose) => [
      String(p.node),
      `${p.lastHeardMsAgo}ms ago`,
      String(p.endpoints),
      fam(p.families?.IPv4),
      fam(p.families?.IPv6),
    ]),
  );
  out += `\npairs: ${(s.pairs ?? []).length}\n`;
  const prot = (x: Loose) =>
    !x || x.protect === 'off'
      ? 'off'
      : `${x.protect}${x.duplicating ? ' dup' : x.written === 'dedup' ? ' dedup' : ''}${x.peerDedup ? '' : ' (peer: no dedup)'}`;
  out += table(
    ['LOCAL', 'REMOTE', 'PEER', 'POLICY', 'PROTECT', 'PREFERRED', 'WIRE', 'REASON'],
    (s.pairs ?? []).map((p: Loose) => [
      String(p.local),
      String(p.remote),
      String(p.peer),
      String(p.policy),
      prot(p.protection),
      String(p.preferred ?? 'native'),
      String(p.wire),
      String(p.reason),
    ]),
  );
  const pr = s.protection;
  if (pr)
    out += `
protection: ${pr.dedup ? 'dedup-v1' : 'off'}  budget ${pr.budgetBytesPerSecond} B/s (burst ${pr.burstBytes})  protected pairs ${pr.protectedPairs}, duplicating ${pr.duplicatingPairs}  duplicated ${pr.dupPackets} packets / ${pr.dupBytes} B, over budget ${pr.dupCapped}, duplicates dropped ${pr.rxDup}\n`;
  out += `\nlast switches:\n`;
  out += table(
    ['AT', 'PAIR', 'FROM', 'TO', 'REASON'],
    (s.switches ?? []).map((e: Loose) => [String(e.at), String(e.pair), String(e.from), String(e.to), String(e.reason)]),
  );
  const drops = Object.entries(s.counters?.drops ?? {})
    .map(([k, v]) => `${clean(k)}=${v}`)
    .join(' ');
  out += `\ndropped datagrams: ${drops || 'none'}\n`;
  for (const n of s.networks ?? []) {
    const id = n.network ?? {};
    out += `\n=== network ${clean(id.name ?? '?')}${id.measuredBy === 'primary' ? ` (measured over the primary network: ${clean(id.note ?? 'no addresses of its own')})` : ''} ===\n`;
    out += renderStatus(n);
  }
  for (const u of s.unknownNetworks ?? [])
    out += `\nnever steered: ${(u.attachments ?? []).length} attachment(s) on network ${clean(u.network)}, which this node does not know: ${(u.attachments ?? []).map(clean).join(', ')}\n`;
  return out;
}

/** Runs `afsteerd status`; resolves with the exit code (0 when the daemon answered ok). */
export async function runStatus(socket: string | undefined, json: boolean, write: (s: string) => void): Promise<number> {
  try {
    const s = await controlRequest(socket ?? DEFAULT_CONTROL_SOCKET, { op: 'status' }, 3000);
    write(json ? JSON.stringify(s, null, 2) + '\n' : renderStatus(s));
    return s.ok === true ? 0 : 1;
  } catch (err) {
    process.stderr.write(`afsteerd status: ${describeError(err)}\n`);
    return 1;
  }
}
