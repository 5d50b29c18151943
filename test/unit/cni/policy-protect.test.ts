/** The protect field of a policy: AFSTEER_PROTECT, the plugin config, the merge of both ends, the pod's policy over the node's. */
import { describe, expect, it } from 'vitest';
import { CniError } from '../../../src/cni/cni-error';
import { parseNetConf } from '../../../src/cni/config';
import { parseProtectArg } from '../../../src/policy/cni-arg';
import { effectivePolicy, mergeProtect, PolicySchema, PROTECT_MODES, type ProtectMode } from '../../../src/policy/schema';

describe('AFSTEER_PROTECT', () => {
  it.each(['off', 'on-suspicion', 'always'])('%s', (m) => expect(parseProtectArg(m)).toBe(m));
  it.each(['', 'on', 'ALWAYS', 'always ', 'on_suspicion', 'true', '1', '__proto__', 'always:1'])(
    'refuses %j naming the allowed values',
    (m) => {
      expect(parseProtectArg(m)).toBe(`AFSTEER_PROTECT ${JSON.stringify(m)}: must be off, on-suspicion or always`);
    },
  );
});

describe('merge of both ends', () => {
  const cases: [ProtectMode | undefined, ProtectMode | undefined, ProtectMode][] = [
    [undefined, undefined, 'off'],
    ['off', undefined, 'off'],
    ['off', 'off', 'off'],
    ['on-suspicion', undefined, 'on-suspicion'],
    [undefined, 'on-suspicion', 'on-suspicion'],
    ['off', 'on-suspicion', 'on-suspicion'],
    ['always', 'off', 'always'],
    ['off', 'always', 'always'],
    ['on-suspicion', 'always', 'always'],
    ['always', 'on-suspicion', 'always'],
    ['always', 'always', 'always'],
    ['on-suspicion', 'on-suspicion', 'on-suspicion'],
  ];
  it.each(cases)('%s + %s → %s', (a, b, want) => {
    expect(mergeProtect(a, b)).toBe(want);
    expect(mergeProtect(b, a)).toBe(want);
  });
  it('is the stronger of every pair of modes (always > on-suspicion > off)', () => {
    for (const a of PROTECT_MODES)
      for (const b of PROTECT_MODES)
        expect(PROTECT_MODES.indexOf(mergeProtect(a, b))).toBe(Math.max(PROTECT_MODES.indexOf(a), PROTECT_MODES.indexOf(b)));
  });
});

describe('a pod policy over the node policy', () => {
  const node = { criterion: 'lowest-loss' as const };
  it('takes the node policy when the pod has none', () => expect(effectivePolicy(undefined, node)).toEqual(node));
  it('a pod giving only protect keeps the node criterion', () =>
    expect(effectivePolicy({ protect: 'always' }, node)).toEqual({ criterion: 'lowest-loss', protect: 'always' }));
  it('a pod criterion with weights replaces the node criterion, the node protect stays', () => {
    expect(
      effectivePolicy(
        { criterion: 'weighted', weights: { latency: 1, jitter: 0, loss: 2 } },
        { criterion: 'lowest-latency', protect: 'on-suspicion' },
      ),
    ).toEqual({ criterion: 'weighted', weights: { latency: 1, jitter: 0, loss: 2 }, protect: 'on-suspicion' });
  });
  it('the pod protect wins over the node protect, also off', () =>
    expect(effectivePolicy({ protect: 'off' }, { criterion: 'lowest-loss', protect: 'always' }).protect).toBe('off'));
  it('the protocol schema refuses a bad mode', () => {
    expect(PolicySchema.safeParse({ criterion: 'lowest-loss', protect: 'maybe' }).success).toBe(false);
    expect(PolicySchema.safeParse({ criterion: 'lowest-loss', protect: 'always' }).success).toBe(true);
  });
});

describe('plugin config policy.protect', () => {
  const conf = (policy: unknown) => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'afsteer', policy });
  it('takes protect alone', () => expect(parseNetConf(conf({ protect: 'always' })).policy).toEqual({ protect: 'always' }));
  it('refuses a bad mode with a message naming the key and the values', () => {
    let err: unknown;
    try {
      parseNetConf(conf({ criterion: 'lowest-loss', protect: 'yes' }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CniError);
    expect((err as CniError).message).toBe(
      'invalid afsteer network configuration: policy.protect must be one of "off", "on-suspicion", "always" (got "yes")',
    );
  });
});
