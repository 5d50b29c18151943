import { describe, expect, it } from 'vitest';
import { runCni } from '../../src/cni/main';

async function run(env: Record<string, string>) {
  let out = '';
  const code = await runCni(env, [], (s) => (out += s));
  return { code, json: JSON.parse(out) as Record<string, unknown> };
}

describe('dispatcher without privileges', () => {
  it('VERSION lists 0.3.0 to 1.1.0', async () => {
    const { code, json } = await run({ CNI_COMMAND: 'VERSION' });
    expect(code).toBe(0);
    expect(json.supportedVersions).toEqual(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
  });
  it('missing CNI_COMMAND is a code 4 error JSON', async () => {
    const { code, json } = await run({});
    expect(code).toBe(1);
    expect(json).toMatchObject({ code: 4, cniVersion: '1.1.0' });
  });
});
