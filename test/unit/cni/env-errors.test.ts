import { describe, expect, it } from 'vitest';
import { CniCode, CniError, toCniError } from '../../../src/cni/cni-error';
import { parseCniArgs, readEnv, readVerb } from '../../../src/cni/env';

const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };

describe('CNI environment', () => {
  it('parses a complete ADD environment', () => {
    const e = readEnv({ ...base, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p=1' }, 'ADD');
    expect(e.path).toEqual(['/opt/cni/bin']);
    expect(e.args.get('K8S_POD_NAME')).toBe('p=1');
  });

  it.each(['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'])('ADD without %s is code 4 naming it', (k) => {
    const env: Record<string, string> = { ...base };
    delete env[k];
    expect(() => readEnv(env, 'ADD')).toThrow(expect.objectContaining({ code: CniCode.InvalidEnv, message: expect.stringContaining(k) }));
  });

  it('DEL does not need CNI_NETNS', () => {
    const env: Record<string, string> = { ...base, CNI_COMMAND: 'DEL' };
    delete env.CNI_NETNS;
    expect(readEnv(env, 'DEL').netns).toBe('');
  });

  it('rejects unsafe container ids, interface names and args', () => {
    expect(() => readEnv({ ...base, CNI_CONTAINERID: '../etc' }, 'ADD')).toThrow(expect.objectContaining({ code: 4 }));
    expect(() => readEnv({ ...base, CNI_IFNAME: 'a/b' }, 'ADD')).toThrow(expect.objectContaining({ code: 4 }));
    expect(() => readEnv({ ...base, CNI_IFNAME: 'x'.repeat(16) }, 'ADD')).toThrow(expect.objectContaining({ code: 4 }));
    expect(() => parseCniArgs('novalue')).toThrow(expect.objectContaining({ code: 4 }));
  });

  it('missing or unknown CNI_COMMAND is code 4', () => {
    expect(() => readVerb({})).toThrow(expect.objectContaining({ code: 4 }));
    expect(() => readVerb({ CNI_COMMAND: 'FROB' })).toThrow(expect.objectContaining({ code: 4 }));
    expect(readVerb({ CNI_COMMAND: 'GC' })).toBe('GC');
  });
});

describe('error mapping', () => {
  it('keeps CniErrors and wraps others as 999 with the cause in details', () => {
    const e = new CniError(7, 'bad');
    expect(toCniError(e)).toBe(e);
    const wrapped = toCniError(new Error('outer', { cause: new Error('inner') }));
    expect(wrapped.code).toBe(CniCode.Internal);
    expect(wrapped.toJSON('1.0.0')).toEqual({
      cniVersion: '1.0.0',
      code: 999,
      msg: 'afsteer internal error: outer',
      details: 'outer: inner',
    });
  });
});
