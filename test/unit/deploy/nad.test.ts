/** Chaining afsteer into a NetworkAttachmentDefinition (install/nad.ts, `afsteer install --nad`), and the secondary-network examples in conf/. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseNetConf } from '../../../src/cni/config';
import { runInstall } from '../../../src/install/install';
import { chainNad, findNad } from '../../../src/install/nad';
import { InstallRefusal } from '../../../src/install/plan';

const macvlan = {
  cniVersion: '1.0.0',
  name: 'transport',
  type: 'macvlan',
  master: 'ens1f0.300',
  ipam: { type: 'whereabouts', range: '172.30.0.0/16' },
};
const nad = (name: string, config: unknown) => ({
  apiVersion: 'k8s.cni.cncf.io/v1',
  kind: 'NetworkAttachmentDefinition',
  metadata: {
    name,
    namespace: 'cnf',
    uid: 'u-1',
    resourceVersion: '42',
    creationTimestamp: '2026-01-01T00:00:00Z',
    generation: 1,
    managedFields: [{}],
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', keep: 'me' },
  },
  spec: { config: JSON.stringify(config) },
});

describe('chaining afsteer into a NetworkAttachmentDefinition', () => {
  it('finds the named NAD in one object or a List', () => {
    const list = { apiVersion: 'v1', kind: 'List', items: [nad('a', macvlan), nad('transport', macvlan)] };
    expect((findNad(list, 'transport').metadata as { name: string }).name).toBe('transport');
    expect((findNad(nad('x', macvlan), 'x').metadata as { name: string }).name).toBe('x');
    expect(() => findNad(list, 'nope')).toThrow(/no NetworkAttachmentDefinition named "nope" in the input \(it has a, transport\)/);
  });

  it('a single-plugin config becomes a conflist with afsteer last; server fields dropped; the result chains no further', () => {
    const out = chainNad(nad('transport', macvlan), { logLevel: 'debug' }).nad!;
    const conf = JSON.parse((out.spec as { config: string }).config);
    expect(conf).toEqual({
      cniVersion: '1.0.0',
      name: 'transport',
      plugins: [
        { type: 'macvlan', master: 'ens1f0.300', ipam: { type: 'whereabouts', range: '172.30.0.0/16' } },
        { type: 'afsteer', logLevel: 'debug' },
      ],
    });
    expect(out.metadata).toEqual({ name: 'transport', namespace: 'cnf', annotations: { keep: 'me' } });
    expect(chainNad(out, {}).already).toEqual({ type: 'afsteer', logLevel: 'debug' });
  });

  it('a conflist gets afsteer appended; ipvlan and host-device chain; others and broken configs are refused', () => {
    const list = { cniVersion: '1.0.0', name: 'sig', plugins: [{ type: 'ipvlan', master: 'x', mode: 'l3' }, { type: 'tuning' }] };
    const conf = JSON.parse((chainNad(nad('sig', list), {}).nad!.spec as { config: string }).config);
    expect(conf.plugins.map((p: { type: string }) => p.type)).toEqual(['ipvlan', 'tuning', 'afsteer']);
    expect(chainNad(nad('hd', { cniVersion: '1.0.0', name: 'hd', type: 'host-device', device: 'ens2f1v3' }), {}).nad).toBeDefined();
    expect(() => chainNad(nad('s', { cniVersion: '1.0.0', name: 's', type: 'sriov' }), {})).toThrow(
      /no plugin afsteer chains after.*sriov/,
    );
    expect(chainNad(nad('s', { cniVersion: '1.0.0', name: 's', type: 'sriov' }), {}, ['sriov']).nad).toBeDefined();
    expect(() => chainNad({ ...nad('b', macvlan), spec: { config: '{ nope' } }, {})).toThrow(/spec.config is not valid JSON/);
    expect(() => chainNad({ ...nad('b', macvlan), spec: {} }, {})).toThrow(InstallRefusal);
    expect(() => chainNad(nad('b', { ...macvlan, name: undefined }), {})).toThrow(/has no "name"/);
  });

  it('afsteer install --nad NAME --nad-file FILE prints the chained NAD and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'afsteer-nad-'));
    try {
      const file = join(dir, 'nads.json');
      writeFileSync(file, JSON.stringify({ kind: 'List', items: [nad('transport', macvlan)] }));
      let out = '';
      const code = await runInstall(['--nad', 'transport', '--nad-file', file, '--afsteer-conf', '{"logLevel":"info"}'], (s) => (out += s));
      expect(code).toBe(0);
      const printed = JSON.parse(out);
      expect(printed.kind).toBe('NetworkAttachmentDefinition');
      expect(JSON.parse(printed.spec.config).plugins.at(-1)).toEqual({ type: 'afsteer', logLevel: 'info' });
      const missing = await runInstall(['--nad', 'other', '--nad-file', file], () => {});
      expect(missing).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('secondary-network examples in conf/', () => {
  const afsteerEntry = (list: { cniVersion: string; name: string; plugins: Record<string, unknown>[] }) => {
    const entry = list.plugins.at(-1)!;
    expect(entry.type).toBe('afsteer');
    return parseNetConf(JSON.stringify({ cniVersion: list.cniVersion, name: list.name, ...entry }));
  };

  it('the macvlan and ipvlan conflists chain afsteer last with a config it accepts', () => {
    for (const [f, first] of [
      ['conf/40-afsteer-macvlan.conflist', 'macvlan'],
      ['conf/50-afsteer-ipvlan.conflist', 'ipvlan'],
    ] as const) {
      const list = JSON.parse(readFileSync(f, 'utf8'));
      expect(list.plugins[0].type).toBe(first);
      expect(afsteerEntry(list).pinDir).toBe('/sys/fs/bpf/afsteer');
    }
  });

  it('the NetworkAttachmentDefinition carries a conflist with afsteer chained (and chaining it again changes nothing)', () => {
    const [doc] = parseAllDocuments(readFileSync('conf/k8s/transport-nad.yaml', 'utf8')).map((d) => d.toJSON());
    expect(doc.kind).toBe('NetworkAttachmentDefinition');
    const list = JSON.parse(doc.spec.config);
    expect(list.plugins[0].type).toBe('macvlan');
    expect(afsteerEntry(list).ipam?.type).toBe('whereabouts');
    expect(chainNad(doc, {}).already).toBeDefined();
  });
});
