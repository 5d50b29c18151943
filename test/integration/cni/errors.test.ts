/** Error replies of the real executable: code, a message a human can act on, nothing else on stdout. */
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AFSTEER_BIN, IS_ROOT, runWithInput } from '../../support/world';

const env = { CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
const conf = { cniVersion: '1.0.0', name: 'n', type: 'afsteer', pinDir: '/sys/fs/bpf/afsteer-errors', stateDir: '/tmp/afsteer-errors' };

function run(verb: string | undefined, input: string, extra: Record<string, string> = {}) {
  return runWithInput(AFSTEER_BIN, [], input, { PATH: process.env.PATH, ...(verb ? { CNI_COMMAND: verb } : {}), ...env, ...extra });
}

function expectOnlyErrorJson(stdout: string, code: number): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  const j = JSON.parse(lines[0]!) as Record<string, unknown>;
  expect(j.code).toBe(code);
  expect(typeof j.msg).toBe('string');
  return j;
}

describe('error replies of dist/afsteer', () => {
  afterAll(() => rmSync('/tmp/afsteer-errors', { recursive: true, force: true }));

  it('bad stdin is code 6', async () => {
    const r = await run('ADD', '{"cniVersion": "1.0.0", ');
    expect(r.code).toBe(1);
    expect(expectOnlyErrorJson(r.stdout, 6).msg).toMatch(/not valid JSON/);
  });

  it('bad config is code 7 and names the field', async () => {
    const r = await run('ADD', JSON.stringify({ ...conf, mtu: 'big' }));
    expect(expectOnlyErrorJson(r.stdout, 7).msg).toMatch(/mtu/);
  });

  it('missing prevResult on ADD is code 7 explaining chaining', async () => {
    const r = await run('ADD', JSON.stringify(conf));
    expect(expectOnlyErrorJson(r.stdout, 7).msg).toMatch(/chained plugin/);
  });

  it('unsupported version is code 1', async () => {
    const r = await run('ADD', JSON.stringify({ ...conf, cniVersion: '0.2.0' }));
    expect(expectOnlyErrorJson(r.stdout, 1).msg).toMatch(/0\.2\.0/);
  });

  it('missing env is code 4 naming the variable', async () => {
    const r = await run('ADD', JSON.stringify(conf), { CNI_IFNAME: '' });
    expect(expectOnlyErrorJson(r.stdout, 4).msg).toMatch(/CNI_IFNAME/);
    const none = await run(undefined, JSON.stringify(conf));
    expectOnlyErrorJson(none.stdout, 4);
  });

  it('VERSION answers in the requested version and lists 0.3.0–1.1.0', async () => {
    const r = await run('VERSION', JSON.stringify({ cniVersion: '0.4.0' }));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });

  it.skipIf(!IS_ROOT)('VERSION and input errors load no native code (nothing extracted), and NODE_OPTIONS is ignored', async () => {
    const home = mkdtempSync(join(tmpdir(), 'afsteer-home-'));
    chmodSync(home, 0o777);
    try {
      // As an unprivileged user the executable would extract addons under $HOME/.cache/afsteer/native.
      const asNobody = (verb: string, input: string) =>
        runWithInput('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', AFSTEER_BIN], input, {
          PATH: process.env.PATH,
          HOME: home,
          CNI_COMMAND: verb,
          NODE_OPTIONS: '--require /nonexistent/inject.js',
          ...env,
        });
      const v = await asNobody('VERSION', '{}');
      expect(v.code, v.stderr).toBe(0);
      expect(v.stderr).not.toMatch(/inject/);
      const bad = await asNobody('ADD', '{');
      expectOnlyErrorJson(bad.stdout, 6);
      expect(existsSync(join(home, '.cache', 'afsteer'))).toBe(false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
