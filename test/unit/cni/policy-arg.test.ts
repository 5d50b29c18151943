/** AFSTEER_POLICY (CNI_ARGS) parsing. */
import { describe, expect, it } from 'vitest';
import { parsePolicyArg } from '../../../src/policy/cni-arg';

describe('AFSTEER_POLICY', () => {
  it.each([
    ['lowest-latency', { criterion: 'lowest-latency' }],
    ['lowest-loss', { criterion: 'lowest-loss' }],
    ['weighted', { criterion: 'weighted' }],
    ['weighted:1,0.5,4', { criterion: 'weighted', weights: { latency: 1, jitter: 0.5, loss: 4 } }],
  ])('%s', (text, want) => expect(parsePolicyArg(text)).toEqual(want));
  it.each([
    '',
    'fastest',
    'constructor',
    '__proto__',
    'lowest-loss:1,1,1',
    'weighted:1,1',
    'weighted:1,1,1,1',
    'weighted:a,b,c',
    'weighted:-1,0,0',
    'weighted:1e9,0,0',
    'weighted:,,',
    'weighted:1,1,1:x',
    'weighted:Infinity,0,0',
  ])('refuses %j with a message', (text) => expect(parsePolicyArg(text)).toMatch(/^AFSTEER_POLICY /));
});
