import { describe, expect, it } from 'vitest';
import { CniCode, CniError } from '../../../src/cni/cni-error';
import { parseNetConf } from '../../../src/cni/config';

function codeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof CniError ? err.code : -1;
  }
  return undefined;
}

describe('network config', () => {
  it('applies defaults and keeps unknown keys', () => {
    const c = parseNetConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'afsteer', extra: { a: 1 } }));
    expect(c.pinDir).toBe('/sys/fs/bpf/afsteer');
    expect(c.stateDir).toBe('/var/lib/afsteer');
    expect(c.allowSingleStack).toBe(false);
    expect(c.logLevel).toBe('info');
    expect((c as Record<string, unknown>).extra).toEqual({ a: 1 });
  });

  it('rejects bad JSON with code 6', () => {
    expect(codeOf(() => parseNetConf('{not json'))).toBe(CniCode.DecodeFailure);
    expect(codeOf(() => parseNetConf('[1,2]'))).toBe(CniCode.DecodeFailure);
    expect(codeOf(() => parseNetConf(''))).toBe(CniCode.DecodeFailure);
  });

  it('rejects an unsupported cniVersion with code 1', () => {
    expect(codeOf(() => parseNetConf(JSON.stringify({ cniVersion: '0.2.0', name: 'n', type: 'afsteer' })))).toBe(
      CniCode.IncompatibleVersion,
    );
    expect(codeOf(() => parseNetConf(JSON.stringify({ cniVersion: '9.9.9', name: 'n', type: 'afsteer' })))).toBe(
      CniCode.IncompatibleVersion,
    );
  });

  it.each([
    [{ cniVersion: '1.0.0', type: 'afsteer' }, 'name'],
    [{ cniVersion: '1.0.0', name: 'n', type: 'afsteer', mtu: 100 }, 'mtu'],
    [{ cniVersion: '1.0.0', name: 'n', type: 'afsteer', mtu: '1400' }, 'mtu'],
    [{ cniVersion: '1.0.0', name: 'n', type: 'afsteer', pinDir: 'relative/dir' }, 'pinDir'],
    [{ cniVersion: '1.0.0', name: 'n', type: 'afsteer', ipam: { type: '../../bin/sh' } }, 'ipam'],
    [{ cniVersion: '1.0.0', name: 'n', type: 'afsteer', allowSingleStack: 'yes' }, 'allowSingleStack'],
  ])('rejects invalid field %j with code 7 naming %s', (conf, field) => {
    try {
      parseNetConf(JSON.stringify(conf));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CniError);
      expect((err as CniError).code).toBe(CniCode.InvalidConfig);
      expect((err as CniError).message).toContain(field);
    }
  });

  it('accepts every supported version', () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
      expect(parseNetConf(JSON.stringify({ cniVersion: v, name: 'n', type: 'afsteer' })).cniVersion).toBe(v);
    }
  });
});
