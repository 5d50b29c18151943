import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCni } from '../../../src/cni/plugin';

/** Runs the dispatcher in-process; its log lines (stderr) are captured, not let through. */
async function run(env: Record<string, string>) {
  let out = '';
  let stderr = '';
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  });
  try {
    const code = await runCni(env, (s) => (out += s));
    return { code, json: JSON.parse(out) as Record<string, unknown>, stderr };
  } finally {
    spy.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('dispatcher without privileges', () => {
  it('VERSION lists 0.3.0 to 1.1.0', async () => {
    const { code, json, stderr } = await run({ CNI_COMMAND: 'VERSION' });
    expect(code).toBe(0);
    expect(json.supportedVersions).toEqual(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    expect(stderr).toBe('');
  });
  it('missing CNI_COMMAND is a code 4 error JSON', async () => {
    const { code, json, stderr } = await run({});
    expect(code).toBe(1);
    expect(json).toMatchObject({ code: 4, cniVersion: '1.1.0' });
    // The error is also logged as one JSON line on stderr.
    const lines = stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 'error', code: 4, msg: expect.stringContaining('CNI_COMMAND is not set') }),
    );
  });
});
