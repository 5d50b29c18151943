/** GC against the runtime's valid-attachment list, and STATUS readiness. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getEndpoint } from '../../../src/bpf/endpoint-map';
import { announceSkip, IS_ROOT, sh, World } from '../../support/world';

announceSkip('GC and STATUS');

describe.skipIf(!IS_ROOT)('GC and STATUS', () => {
  let w: World;
  beforeAll(() => (w = new World()));
  afterAll(() => w?.cleanup());

  it('STATUS is ready on a usable bpffs and code 50 when the pin dir is not on bpffs', async () => {
    const ok = await w.plugin('STATUS', { cniVersion: '1.1.0', name: 'st', ...w.afsteerConf() });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toBe('');
    const notBpf = mkdtempSync(join(tmpdir(), 'afsteer-notbpf-'));
    try {
      const bad = await w.plugin('STATUS', { cniVersion: '1.1.0', name: 'st', ...w.afsteerConf({ pinDir: notBpf }) });
      expect(bad.code).toBe(1);
      expect(bad.json).toMatchObject({ code: 50 });
      expect(String(bad.json?.msg)).toMatch(/not ready: .*not on a bpf filesystem/);
    } finally {
      rmSync(notBpf, { recursive: true, force: true });
    }
  });

  it('GC removes every attachment not in cni.dev/valid-attachments (and the older cni.dev/attachments)', async () => {
    const list = w.conflist('gc');
    const ids = ['keep', 'drop1', 'drop2'];
    const hosts = new Map<string, { hostIfname: string; hostIfindex: number }>();
    for (const id of ids) {
      const add = await w.driver('add', list, w.netns(id), `ctr-${id}`);
      expect(add.code, add.stderr).toBe(0);
      hosts.set(id, JSON.parse(sh('cat', [join(w.stateDir, 'attachments', `ctr-${id}_eth0.json`)])));
    }
    const conf = {
      cniVersion: '1.1.0',
      name: `gc-${w.id}`,
      ...w.afsteerConf(),
      'cni.dev/valid-attachments': [
        { containerID: 'ctr-keep', ifname: 'eth0' },
        { containerID: 'ctr-drop2', ifname: 'eth0' },
      ],
    };
    const gc = await w.plugin('GC', conf);
    expect(gc.code, gc.stdout + gc.stderr).toBe(0);
    expect(w.stateFiles().sort()).toEqual(['ctr-drop2_eth0.json', 'ctr-keep_eth0.json']);
    const dropped = hosts.get('drop1')!;
    expect(getEndpoint(w.pinDir, dropped.hostIfindex)).toBeUndefined();
    expect(sh('tc', ['filter', 'show', 'dev', dropped.hostIfname, 'ingress'])).toBe('');
    expect(getEndpoint(w.pinDir, hosts.get('keep')!.hostIfindex)).toBeDefined();
    expect(sh('tc', ['filter', 'show', 'dev', hosts.get('keep')!.hostIfname, 'ingress'])).toMatch(/afsteer/);

    const legacy = {
      cniVersion: '1.1.0',
      name: `gc-${w.id}`,
      ...w.afsteerConf(),
      'cni.dev/attachments': [{ containerID: 'ctr-keep', ifname: 'eth0' }],
    };
    expect((await w.plugin('GC', legacy)).code).toBe(0);
    expect(w.stateFiles()).toEqual(['ctr-keep_eth0.json']);

    const bad = await w.plugin('GC', { ...legacy, 'cni.dev/attachments': [{ container: 'x' }] });
    expect(bad.json).toMatchObject({ code: 7 });

    for (const id of ids) expect((await w.driver('del', list, `/run/netns/af${w.id}${id}`, `ctr-${id}`)).code).toBe(0);
    expect(w.stateFiles()).toEqual([]);
    expect(existsSync(join(w.pinDir, 'progs'))).toBe(true);
  });
});
