/**
 * Prometheus metrics of afsteerd (prom-client, loaded only when metrics are on, so neither the
 * plugin nor a daemon without metrics carries it). Every value is read from the daemon's parts
 * at scrape time; series are per peer and family at most (never per pod or pair: a pair's detail
 * is in `afsteerd status`), so cardinality is bounded by the peers. docs/observability.md lists them all.
 */
import type { Registry } from 'prom-client';
import { FAMILIES, familyName } from '../../net/family';
import { REFUSAL_REASONS } from '../counters';
import type { DaemonParts } from './daemon-view';
import { type Snapshot, takeSnapshot } from './snapshot';
import { FAMILY_STATES, SWITCH_REASONS, switchReason } from './vocabulary';

/** Node-wide data-plane counters (src/bpf/steering.ts readStats), read at scrape time. */
export type StatsReader = () => Record<string, bigint>;

/** The metrics of one daemon. */
export interface DaemonMetrics {
  registry: Registry;
  /** The exposition text. */
  text(): Promise<string>;
  contentType: string;
}

/** Names of every metric afsteerd exports (the dashboard test checks expressions against them). */
export const METRIC_NAMES = [
  'afsteer_info',
  'afsteer_peers',
  'afsteer_peer_up',
  'afsteer_peer_rtt_seconds',
  'afsteer_peer_jitter_seconds',
  'afsteer_peer_loss_ratio',
  'afsteer_peer_probe_samples',
  'afsteer_peer_family_state',
  'afsteer_pairs',
  'afsteer_pairs_pinned',
  'afsteer_switches_total',
  'afsteer_control_datagrams_sent_total',
  'afsteer_control_datagrams_received_total',
  'afsteer_control_datagrams_dropped_total',
  'afsteer_control_bytes_total',
  'afsteer_control_send_errors_total',
  'afsteer_probe_packets_total',
  'afsteer_probe_bytes_total',
  'afsteer_dataplane_packets_total',
  'afsteer_dataplane_dropped_packets_total',
  'afsteer_dataplane_read_errors_total',
  'afsteer_daemon_events_total',
  'afsteer_echo_reflected_total',
  'afsteer_echo_refused_total',
  'afsteer_echo_allowed_sources',
  'afsteer_echo_allow_list_refused_total',
  'afsteer_conntrack_markings_total',
  'afsteer_conntrack_mark_failures_total',
  'afsteer_conntrack_entries_total',
  'afsteer_conntrack_mark_seconds',
  'afsteer_identity_certificate_expiry_seconds',
  'afsteer_identity_certificates_near_expiry',
  'afsteer_daemon_refusals_total',
] as const;

/** Which data-plane counter (maps-layout Stat) goes to which metric and label. */
const STAT_METRIC: Record<string, { drop?: string; packets?: string }> = {
  encap: { packets: 'encapsulated' },
  decap: { packets: 'decapsulated' },
  encapFail: { packets: 'encap_failed' },
  decapFail: { packets: 'decap_failed' },
  srcForeign: { packets: 'foreign_source' },
  dropSpoof: { drop: 'spoofed' },
  dropMismatch: { drop: 'family_mismatch' },
};

/** Drop reasons of the receive path, named for operators (frame.ts RejectReason, receiver.ts DropReason). */
const DROP_LABEL: Record<string, string> = {
  mac: 'bad_mac',
  replay: 'replay',
  payload: 'malformed',
  short: 'malformed',
  magic: 'malformed',
  node: 'malformed',
  oversized: 'oversized',
  version: 'unknown_version',
  type: 'unknown_type',
  self: 'self',
  'unknown-peer': 'unknown_peer',
  'unknown-pair': 'unknown_pair',
  internal: 'internal',
  // Identities (trust/): a frame's certificate or auth refused, a pod claim refused.
  auth: 'malformed',
  cert: 'malformed',
  malformed: 'malformed',
  'signed-type': 'malformed',
  'unknown-identity': 'unknown_identity',
  authority: 'bad_certificate',
  signature: 'bad_certificate',
  expired: 'expired_certificate',
  'not-yet-valid': 'bad_certificate',
  name: 'name_mismatch',
  superseded: 'bad_certificate',
  rate: 'certificate_rate',
  revoked: 'revoked',
  'cluster-key': 'cluster_key_refused',
  downgrade: 'cluster_key_refused',
  'uncertified-address': 'uncertified_address',
  'claim-outside-cidrs': 'refused_claim',
  'claim-owned-by-other': 'refused_claim',
};
/** Every label value of afsteer_control_datagrams_dropped_total (all exported, at 0 until one happens). */
export const DROP_REASONS = [...new Set(Object.values(DROP_LABEL))];
const FRAME_TYPES = ['announce', 'negotiate', 'probe', 'probeReply', 'echo'];

/** One series: its labels as exposition text (`peer="a",family="IPv4"`) and its value. */
interface Sample {
  labels: string;
  value: number;
}

/** A gauge whose series are computed at scrape time and written as exposition text directly. */
interface TextGauge {
  name: string;
  help: string;
  values: () => Sample[];
}

/** Label values here are node names ([A-Za-z0-9._-]), family, state and wire names; escaped anyway as the format asks. */
const escapeLabel = (v: string): string => (/[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v);

/** The exposition text of text gauges (# HELP, # TYPE, one line per series). */
export function textGauges(gauges: TextGauge[]): string {
  const out: string[] = [];
  for (const g of gauges) {
    out.push(`# HELP ${g.name} ${g.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${g.name} gauge`);
    const head = `${g.name}{`;
    for (const s of g.values())
      out.push(`${head}${s.labels}} ${Number.isFinite(s.value) ? s.value : s.value > 0 ? '+Inf' : s.value < 0 ? '-Inf' : 'NaN'}`);
  }
  return out.join('\n') + '\n';
}

/** Builds the registry over the daemon's parts. version: the build's. */
export async function createMetrics(parts: DaemonParts, readStats: StatsReader | undefined, version: string): Promise<DaemonMetrics> {
  const prom = await import('prom-client');
  const registry = new prom.Registry();
  // A few process metrics of our own: prom-client's defaults include nodejs_*_total gauges that
  // `promtool check metrics` rejects.
  new prom.Counter({
    name: 'process_cpu_seconds_total',
    help: 'User and system CPU time of afsteerd.',
    registers: [registry],
    collect() {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    },
  });
  new prom.Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory of afsteerd.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });
  const startedAt = Date.now() / 1000 - process.uptime();
  new prom.Gauge({
    name: 'process_start_time_seconds',
    help: 'Start time of afsteerd since the epoch.',
    registers: [registry],
    collect() {
      this.set(Math.round(startedAt));
    },
  });
  // One read of the parts per scrape (text() clears it): every gauge below collects from it.
  let snap: Snapshot | undefined;
  const snapshot = () => (snap ??= takeSnapshot(parts));
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: import('prom-client').Gauge<string>) => void) =>
    new prom.Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        collect(this);
      },
    });
  const counter = (name: string, help: string, labelNames: string[], values: () => [Record<string, string>, number][]) =>
    new prom.Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const [l, v] of values()) this.inc(l, v);
      },
    });

  gauge('afsteer_info', 'This afsteerd: node name and version (always 1).', ['node', 'version'], (g) =>
    g.set({ node: parts.cfg.nodeName, version }, 1),
  );
  gauge('afsteer_peers', 'Peer nodes known.', [], (g) => g.set(snapshot().peers.length));
  gauge(
    'afsteer_identity_certificate_expiry_seconds',
    "Seconds until this node's certificate expires (absent without an identity).",
    [],
    (g) => {
      const own = parts.trust.book?.own;
      if (own) g.set((own.notAfter - Date.now()) / 1000);
    },
  );
  gauge('afsteer_identity_certificates_near_expiry', "Certificates (this node's and its peers') that expire within 14 days.", [], (g) =>
    g.set(parts.trust.nearExpiry().length),
  );
  gauge(
    'afsteer_probe_paths',
    'Probed paths (peer and family) by how they are probed: fast (peer with pairs), demand (its pairs’ traffic proves the path), idle (no pairs).',
    ['mode'],
    (g) => {
      const n = { fast: 0, demand: 0, idle: 0 };
      for (const p of parts.peers.values()) {
        const active = parts.pairs.peerHasPairs(p.node);
        for (const path of [p.paths[4], p.paths[6]]) if (path) n[!active ? 'idle' : (path.demand?.mode ?? 'fast')]++;
      }
      for (const [mode, v] of Object.entries(n)) g.set({ mode }, v);
    },
  );
  // Per-peer series (22 per peer, 22,000 at 1,000 peers) skip prom-client, whose per-series set()
  // hashes every label set and whose formatter copies each: written as text directly, after the rest.
  const peerGauges: TextGauge[] = [];
  // A peer's label text, rendered once (not once per series): `peer="…"`, and with each family.
  const labelMemo = new Map<string, { peer: string; fam: Record<string, string> }>();
  const labelsOf = (node: string) => {
    let l = labelMemo.get(node);
    if (!l) {
      if (labelMemo.size > 4 * Math.max(1024, parts.peers.size)) labelMemo.clear();
      const peer = `peer="${escapeLabel(node)}"`;
      l = { peer, fam: { IPv4: `${peer},family="IPv4"`, IPv6: `${peer},family="IPv6"` } };
      labelMemo.set(node, l);
    }
    return l;
  };
  const perPeer = (name: string, help: string, values: (p: Snapshot['peers'][0], out: Sample[]) => void) =>
    void peerGauges.push({
      name,
      help,
      values: () => {
        const out: Sample[] = [];
        for (const p of snapshot().peers) values(p, out);
        return out;
      },
    });
  perPeer(
    'afsteer_peer_up',
    'Peer heard within the peer timeout (1) or silent (0).',
    (p, out) => void out.push({ labels: labelsOf(p.node).peer, value: p.alive ? 1 : 0 }),
  );
  const perFamily = (
    name: string,
    help: string,
    v: (m: NonNullable<Snapshot['peers'][0]['families']['IPv4']>['metrics'] & object) => number,
  ) =>
    perPeer(name, help, (p, out) => {
      const l = labelsOf(p.node).fam;
      for (const [family, f] of Object.entries(p.families)) if (f.metrics) out.push({ labels: l[family]!, value: v(f.metrics) });
    });
  perFamily('afsteer_peer_rtt_seconds', 'Median probe round-trip time over the window, per peer and family.', (m) => m.latency_ms / 1000);
  perFamily('afsteer_peer_jitter_seconds', 'Mean absolute difference of successive probe RTTs over the window.', (m) => m.jitter_ms / 1000);
  perFamily('afsteer_peer_loss_ratio', 'Probes lost over the window (0–1).', (m) => m.packet_loss);
  perFamily('afsteer_peer_probe_samples', 'Probe outcomes in the window.', (m) => m.samples);
  perPeer(
    'afsteer_peer_family_state',
    'State of a family toward a peer: 1 for the current state (probing, up, degraded, blackhole), 0 for the others.',
    (p, out) => {
      const l = labelsOf(p.node).fam;
      for (const [family, f] of Object.entries(p.families))
        for (const state of FAMILY_STATES) out.push({ labels: `${l[family]!},state="${state}"`, value: f.state === state ? 1 : 0 });
    },
  );
  perPeer('afsteer_pairs', "Pod pairs with a peer by the wire family of this node's sending direction (native, ipv4, ipv6).", (p, out) => {
    const l = labelsOf(p.node).peer;
    for (const [wire, n] of Object.entries(p.pairs)) out.push({ labels: `${l},wire="${wire}"`, value: n });
  });
  perPeer(
    'afsteer_pairs_pinned',
    'Pairs under an operator pin (afsteerd prefer); honoured="false" while the pinned family is blackholed and the pair is on the other.',
    (p, out) => {
      const l = labelsOf(p.node).peer;
      out.push(
        { labels: `${l},honoured="true"`, value: p.pinned.honoured },
        { labels: `${l},honoured="false"`, value: p.pinned.overridden },
      );
    },
  );
  const switchCounts = new Map<string, number>(SWITCH_REASONS.map((r) => [r, 0]));
  parts.switches.listeners.push((ev) => {
    const r = switchReason(ev.reason);
    switchCounts.set(r, (switchCounts.get(r) ?? 0) + 1);
  });
  counter(
    'afsteer_switches_total',
    "Switches of this node's sending wire family, by reason (blackhole, policy, peer-choice, pinned, peer-silent, no-decap, other).",
    ['reason'],
    () => [...switchCounts].map(([reason, v]) => [{ reason }, v]),
  );
  const byType = (t: Record<string, number>) => FRAME_TYPES.map((type): [Record<string, string>, number] => [{ type }, t[type] ?? 0]);
  counter(
    'afsteer_control_datagrams_sent_total',
    'Control datagrams sent, by type (announce, negotiate, probe, probeReply, echo: an echo probe, looped back by the peer).',
    ['type'],
    () => byType(parts.counters.tx),
  );
  counter(
    'afsteer_control_datagrams_received_total',
    'Control datagrams accepted (authenticated, fresh, well-formed), by type.',
    ['type'],
    () => byType(parts.counters.rx),
  );
  counter(
    'afsteer_control_datagrams_dropped_total',
    "Control datagrams dropped, by reason (bad_mac, replay, malformed, oversized, unknown_version, unknown_type, self, unknown_peer, unknown_pair, internal; with identities: unknown_identity, bad_certificate, expired_certificate, name_mismatch, revoked, cluster_key_refused, uncertified_address, certificate_rate, and refused_claim: a pod claim outside the peer's certified CIDRs or on another certified node's address).",
    ['reason'],
    () => {
      const out = new Map<string, number>(DROP_REASONS.map((r) => [r, 0]));
      for (const [k, v] of Object.entries(parts.counters.drops)) {
        const l = DROP_LABEL[k] ?? 'internal';
        out.set(l, out.get(l)! + v);
      }
      return [...out].map(([reason, v]) => [{ reason }, v]);
    },
  );
  const traffic = (t: Record<string, number>, probesOnly: boolean) => {
    const out = new Map<string, [Record<string, string>, number]>();
    for (const [k, v] of Object.entries(t)) {
      const [dir, type, fam] = k.split('|') as [string, string, string];
      const isProbe = type === 'probe' || type === 'probeReply' || type === 'echo';
      if (probesOnly && !isProbe) continue;
      const labels: Record<string, string> = probesOnly
        ? { direction: dir === 'tx' ? 'sent' : 'received', family: familyName(Number(fam) as 4 | 6) }
        : { direction: dir === 'tx' ? 'sent' : 'received' };
      const key = JSON.stringify(labels);
      out.set(key, [labels, (out.get(key)?.[1] ?? 0) + v]);
    }
    return [...out.values()];
  };
  counter('afsteer_control_bytes_total', 'Bytes of control datagrams sent and accepted (UDP payload).', ['direction'], () =>
    traffic(parts.counters.bytes, false),
  );
  counter('afsteer_control_send_errors_total', 'Control datagrams the kernel refused to send, by family.', ['family'], () =>
    FAMILIES.map((f) => [{ family: familyName(f) }, parts.sendErrors[f]]),
  );
  counter(
    'afsteer_probe_packets_total',
    'Probe datagrams (MACed probes and replies, echo probes and their returns), sent and accepted, by family.',
    ['direction', 'family'],
    () => traffic(parts.counters.packets, true),
  );
  counter('afsteer_probe_bytes_total', 'Bytes of probe datagrams (UDP payload), by direction and family.', ['direction', 'family'], () =>
    traffic(parts.counters.bytes, true),
  );
  counter('afsteer_daemon_events_total', 'Notable daemon events (e.g. event-loop-stall).', ['event'], () =>
    Object.entries(parts.counters.events).map(([event, v]) => [{ event }, v]),
  );
  counter(
    'afsteer_daemon_refusals_total',
    'Requests and connections refused on the metrics address and the control socket, by reason (http-bad-target, http-host, http-method, http-malformed, http-timeout, http-too-large, http-connection-cap, control-too-large).',
    ['reason'],
    () => REFUSAL_REASONS.map((reason) => [{ reason }, parts.counters.refused[reason] ?? 0]),
  );

  // The echo reflectors (kernel, userspace fallback): what they sent back and what they refused, by reason.
  let echo: ReturnType<DaemonParts['echo']> | undefined;
  const echoView = () => {
    if (echo) return echo;
    try {
      echo = parts.echo();
    } catch {
      // The kernel reflector's pinned counts could not be read: the rest is still exported.
      echo = { allowed: 0, list: { added: 0, removed: 0, kernelFull: 0, kernelErrors: 0 } };
    }
    return echo;
  };
  counter('afsteer_echo_reflected_total', 'Echo probes sent back, by reflector (kernel, userspace).', ['reflector'], () => {
    const e = echoView();
    return [
      ...(e.kernel ? [[{ reflector: 'kernel' }, e.kernel.reflected] as [Record<string, string>, number]] : []),
      ...(e.userspace ? [[{ reflector: 'userspace' }, e.userspace.reflected] as [Record<string, string>, number]] : []),
    ];
  });
  counter(
    'afsteer_echo_refused_total',
    'Echo datagrams not sent back, by reflector and reason (unknown-source: no peer holds the address; rate: above the per-source rate; size: not one echo long; loop: from an echo port; not-echo: userspace only).',
    ['reflector', 'reason'],
    () => {
      const e = echoView();
      const out: [Record<string, string>, number][] = [];
      for (const [reflector, c] of [
        ['kernel', e.kernel],
        ['userspace', e.userspace],
      ] as const)
        if (c) for (const [reason, v] of Object.entries(c.refused)) out.push([{ reflector, reason }, v]);
      return out;
    },
  );
  gauge('afsteer_echo_allowed_sources', "Control addresses of known peers the echo reflectors answer (the allow-list's size).", [], (g) =>
    g.set(echoView().allowed),
  );
  counter(
    'afsteer_echo_allow_list_refused_total',
    "Peer addresses the kernel reflector's allow-list could not take (full: at its size limit; error).",
    ['reason'],
    () => [
      [{ reason: 'full' }, echoView().list.kernelFull],
      [{ reason: 'error' }, echoView().list.kernelErrors],
    ],
  );
  // Per-flow conntrack marking of switched pairs (no node-wide setting is ever changed).
  counter(
    'afsteer_conntrack_markings_total',
    "Markings of switched pairs' TCP conntrack entries as liberal (one per batch: the pairs written in one turn of the event loop).",
    [],
    () => [[{}, parts.conntrack()?.markings ?? 0]],
  );
  counter('afsteer_conntrack_mark_failures_total', 'Markings that failed (timeout, refused): the switch still happened.', [], () => [
    [{}, parts.conntrack()?.failures ?? 0],
  ]);
  counter(
    'afsteer_conntrack_entries_total',
    'Conntrack entries of switched pairs, by result (marked liberal now, already liberal, vanished before the update).',
    ['result'],
    () => {
      const c = parts.conntrack();
      return [
        [{ result: 'marked' }, c?.marked ?? 0],
        [{ result: 'already' }, c?.already ?? 0],
        [{ result: 'vanished' }, c?.vanished ?? 0],
      ];
    },
  );
  gauge('afsteer_conntrack_mark_seconds', 'Time of the last and of the slowest marking.', ['which'], (g) => {
    const c = parts.conntrack();
    g.set({ which: 'last' }, (c?.lastMs ?? 0) / 1000);
    g.set({ which: 'max' }, (c?.maxMs ?? 0) / 1000);
  });

  let statsErrors = 0;
  let stats: Record<string, bigint> | undefined;
  let statsRead = false;
  const readDataPlane = () => {
    if (statsRead) return stats;
    statsRead = true;
    try {
      stats = readStats?.();
    } catch {
      statsErrors++;
      stats = undefined;
    }
    return stats;
  };
  counter(
    'afsteer_dataplane_packets_total',
    'Node-wide data-plane counters from the pinned stats map, by counter (encapsulated, decapsulated, encap_failed, decap_failed, foreign_source).',
    ['counter'],
    () => {
      const s = readDataPlane();
      return s
        ? Object.entries(STAT_METRIC)
            .filter(([, m]) => m.packets)
            .map(([k, m]) => [{ counter: m.packets! }, Number(s[k] ?? 0n)])
        : [];
    },
  );
  counter(
    'afsteer_dataplane_dropped_packets_total',
    'Packets the data plane dropped, by reason (spoofed, family_mismatch).',
    ['reason'],
    () => {
      const s = readDataPlane();
      return s
        ? Object.entries(STAT_METRIC)
            .filter(([, m]) => m.drop)
            .map(([k, m]) => [{ reason: m.drop! }, Number(s[k] ?? 0n)])
        : [];
    },
  );
  counter('afsteer_dataplane_read_errors_total', 'Scrapes at which the pinned stats map could not be read.', [], () => [[{}, statsErrors]]);
  return {
    registry,
    contentType: registry.contentType,
    text: async () => {
      snap = undefined;
      statsRead = false;
      echo = undefined;
      try {
        return (await registry.metrics()) + textGauges(peerGauges);
      } finally {
        snap = undefined;
        stats = undefined;
      }
    },
  };
}
