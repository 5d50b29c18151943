/**
 * conf/grafana/afsteer.json against what afsteerd really exports: every expression (panels,
 * annotations, template variables) names only metrics that appear in a scrape of a real daemon's
 * registry (in memory), and the file is an importable dashboard (inputs, uid, panels with targets).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/negotiator/ops/metrics';
import { configureLog } from '../../../src/util/log';
import { MemoryCluster } from '../../support/memory-cluster';

const dash = JSON.parse(readFileSync(join(__dirname, '../../../conf/grafana/afsteer.json'), 'utf8'));
let exported: Set<string>;
let cluster: MemoryCluster;

beforeAll(async () => {
  configureLog({ level: 'error' });
  cluster = new MemoryCluster(2);
  await cluster.start();
  cluster.clock.advance(1500);
  const m = await createMetrics(cluster.nodes[0]!.daemon.parts(), () => ({ encap: 1n }), 'test');
  exported = new Set([...(await m.text()).matchAll(/^# TYPE (\S+)/gm)].map((x) => x[1]!));
});
afterAll(() => cluster?.stop());

/** Every PromQL text in the dashboard. */
function expressions(): string[] {
  const out: string[] = [];
  for (const p of dash.panels) for (const t of p.targets ?? []) out.push(t.expr);
  for (const a of dash.annotations.list) if (a.expr) out.push(a.expr);
  for (const v of dash.templating.list) out.push(typeof v.query === 'string' ? v.query : v.query.query);
  return out;
}

/** Metric names in a PromQL expression: what is left after strings, matchers, ranges, grouping clauses, functions and keywords. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"[^"]*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const keywords = [
    'by',
    'without',
    'and',
    'or',
    'unless',
    'on',
    'ignoring',
    'bool',
    'offset',
    'sum',
    'avg',
    'min',
    'max',
    'count',
    'topk',
    'bottomk',
    'label_values',
  ];
  const names: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = bare.slice(m.index! + m[0].length).trimStart();
    if (after.startsWith('(') || keywords.includes(m[0])) continue;
    // label_values(metric, label): the label after the comma is not a metric.
    if (/,\s*$/.test(bare.slice(0, m.index!)) && /^\)/.test(after)) continue;
    if (/^\d/.test(m[0])) continue;
    names.push(m[0]);
  }
  return names;
}

describe('Grafana dashboard conf/grafana/afsteer.json', () => {
  it('is an importable dashboard: a Prometheus data-source input, a uid, panels each with a query', () => {
    expect(dash.__inputs[0]).toMatchObject({ type: 'datasource', pluginId: 'prometheus' });
    expect(dash.uid).toMatch(/^[a-z0-9-]+$/);
    expect(dash.panels.length).toBeGreaterThanOrEqual(8);
    for (const p of dash.panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
    expect(dash.annotations.list.some((a: any) => /afsteer_switches_total/.test(a.expr ?? ''))).toBe(true);
  });

  it('every expression names only metrics the daemon exports', () => {
    const exprs = expressions();
    expect(exprs.length).toBeGreaterThan(10);
    const used = new Set<string>();
    for (const e of exprs) {
      const names = metricNames(e);
      expect(names.length, e).toBeGreaterThan(0);
      for (const n of names) {
        used.add(n);
        expect(exported, `${n} in ${e}`).toContain(n);
      }
    }
    // The panels: RTT and loss per family, pairs per family, dropped datagrams, switches.
    for (const n of [
      'afsteer_peer_rtt_seconds',
      'afsteer_peer_loss_ratio',
      'afsteer_pairs',
      'afsteer_control_datagrams_dropped_total',
      'afsteer_switches_total',
    ])
      expect(used).toContain(n);
  });

  it('the name check itself catches a metric the daemon does not export', () => {
    expect(metricNames('sum by (peer) (rate(afsteer_no_such_total{peer=~"$peer"}[1m]))')).toEqual(['afsteer_no_such_total']);
  });
});
