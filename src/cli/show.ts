/** `afsteer show`: the node's registered endpoints and their per-family packet counters (table or --json). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { listEndpoints, readCounters } from '../bpf/endpoint-map';
import { Direction, Family, MAPS } from '../bpf/maps-layout';
import { DEFAULT_PIN_DIR, DEFAULT_STATE_DIR } from '../defaults';
import { attachmentLabel, listStates } from '../node/attachments';
import { table } from './text';

/** One row of the show output. */
export interface ShowRow {
  hostIfindex: number;
  hostIfname?: string;
  pod?: string;
  containerId?: string;
  ipv4?: string;
  ipv6?: string;
  counters: Record<'ipv4' | 'ipv6' | 'other', Record<'fromPod' | 'toPod', { packets: string; bytes: string }>>;
}

function emptyCounters(): ShowRow['counters'] {
  const z = () => ({ fromPod: { packets: '0', bytes: '0' }, toPod: { packets: '0', bytes: '0' } });
  return { ipv4: z(), ipv6: z(), other: z() };
}

/** Collects endpoints (map + state files) and counters. */
export function collect(pinDir: string, stateDir: string): ShowRow[] {
  if (!existsSync(join(pinDir, MAPS.endpoints.name))) return [];
  const states = new Map(listStates(stateDir).map((s) => [s.endpoint, s]));
  const rows = new Map<number, ShowRow>();
  for (const [ifindex, ep] of listEndpoints(pinDir)) {
    const s = states.get(ifindex);
    rows.set(ifindex, {
      hostIfindex: ifindex,
      ...(s ? { hostIfname: attachmentLabel(s), containerId: s.containerId } : {}),
      ...(s?.podName ? { pod: `${s.podNamespace ?? ''}/${s.podName}` } : {}),
      ...(ep.ipv4 ? { ipv4: ep.ipv4 } : {}),
      ...(ep.ipv6 ? { ipv6: ep.ipv6 } : {}),
      counters: emptyCounters(),
    });
  }
  const famName = { [Family.ipv4]: 'ipv4', [Family.ipv6]: 'ipv6', [Family.other]: 'other' } as const;
  for (const c of readCounters(pinDir)) {
    const row = rows.get(c.ifindex);
    const fam = famName[c.family as 0 | 1 | 2];
    if (!row || !fam) continue;
    row.counters[fam][c.direction === Direction.fromPod ? 'fromPod' : 'toPod'] = { packets: String(c.packets), bytes: String(c.bytes) };
  }
  return [...rows.values()].sort((a, b) => a.hostIfindex - b.hostIfindex);
}

/** Renders rows as an aligned text table (names with control characters escaped). */
export function renderTable(rows: ShowRow[]): string {
  const head = ['HOST-VETH', 'POD', 'IPV4', 'IPV6', 'V4 OUT pkts', 'V4 IN pkts', 'V6 OUT pkts', 'V6 IN pkts'];
  const body = rows.map((r) => [
    r.hostIfname ?? `#${r.hostIfindex}`,
    r.pod ?? r.containerId ?? '-',
    r.ipv4 ?? '-',
    r.ipv6 ?? '-',
    r.counters.ipv4.fromPod.packets,
    r.counters.ipv4.toPod.packets,
    r.counters.ipv6.fromPod.packets,
    r.counters.ipv6.toPod.packets,
  ]);
  return table(head, body);
}

/** Runs `afsteer show [--pin-dir DIR] [--state-dir DIR] [--json]`; returns the exit code. */
export function runShow(argv: string[], write: (s: string) => void): number {
  let pinDir = DEFAULT_PIN_DIR;
  let stateDir = DEFAULT_STATE_DIR;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') json = true;
    else if (a === '--pin-dir' && argv[i + 1]) pinDir = argv[++i]!;
    else if (a === '--state-dir' && argv[i + 1]) stateDir = argv[++i]!;
    else {
      process.stderr.write(`usage: afsteer show [--pin-dir DIR] [--state-dir DIR] [--json]\n`);
      return 2;
    }
  }
  const rows = collect(pinDir, stateDir);
  write(json ? JSON.stringify(rows, null, 2) + '\n' : renderTable(rows));
  return 0;
}
