import { describe, expect, it } from 'vitest';
import { containerInterfaceIndex, familiesFor, formatResult, parseResult } from '../../../src/cni/result';

const v040 = {
  cniVersion: '0.4.0',
  interfaces: [
    { name: 'cni0', mac: '00:11:22:33:44:55' },
    { name: 'eth0', sandbox: '/run/netns/x' },
  ],
  ips: [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 1 }],
  routes: [{ dst: '0.0.0.0/0' }],
  dns: {},
};

describe('CNI results', () => {
  it('drops ips[].version internally and restores it for pre-1.0 output', () => {
    const r = parseResult(v040, 'prevResult');
    expect(r.ips?.[0]).not.toHaveProperty('version');
    const out1 = formatResult(r, '1.0.0') as { ips: Record<string, unknown>[]; cniVersion: string };
    expect(out1.cniVersion).toBe('1.0.0');
    expect(out1.ips[0]).not.toHaveProperty('version');
    const out0 = formatResult({ ...r, ips: [...r.ips!, { address: 'fd00::2/64', interface: 1 }] }, '0.3.1') as {
      ips: Record<string, unknown>[];
    };
    expect(out0.ips.map((i) => i.version)).toEqual(['4', '6']);
  });

  it('keeps unknown fields of the previous result', () => {
    const r = parseResult({ ...v040, custom: 'x' }, 'prevResult');
    expect((formatResult(r, '1.1.0') as Record<string, unknown>).custom).toBe('x');
  });

  it('finds the container interface and its families', () => {
    const r = parseResult(v040, 'prevResult');
    const idx = containerInterfaceIndex(r, 'eth0');
    expect(idx).toBe(1);
    expect([...familiesFor(r, idx)]).toEqual([4]);
    expect(containerInterfaceIndex(r, 'cni0')).toBeUndefined();
  });

  it('rejects malformed results with a message', () => {
    expect(() => parseResult({ ips: [{ address: '10.0.0.300/24' }] }, 'prevResult')).toThrow(/prevResult is not a valid CNI result/);
    expect(() => parseResult({ ips: [{ address: '10.0.0.3' }] }, 'prevResult')).toThrow(/prefix/);
    expect(() => parseResult({ routes: [{ dst: '::/0', gw: 'nope' }] }, 'prevResult')).toThrow(/IP address/);
  });
});
