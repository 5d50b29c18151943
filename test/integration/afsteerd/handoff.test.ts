/**
 * The plugin's ADD handed to a running afsteerd (src/cni/handoff-client.ts, src/negotiator/control/handoff-server.ts),
 * with real parts: Debian's bridge + host-local before afsteer, libcni (the driver), real netns,
 * real BPF, a real afsteerd (dist/afsteerd). With afsteerd up the ADD is run by it (its log says
 * so) and prints exactly what the in-process ADD prints, success and error alike; with afsteerd
 * down, and with an afsteerd that hangs (SIGSTOP), the plugin does the ADD itself within its short
 * timeout, and the hung daemon, once resumed, does not apply it a second time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exited, waitFor } from '../../support/process';
import { announceSkip, IS_ROOT, REFERENCE_PLUGINS, ROOT, runWithInput, World } from '../../support/world';

announceSkip('ADD hand-off to afsteerd');

describe.skipIf(!IS_ROOT)('ADD hand-off to afsteerd', () => {
  let w: World;
  let daemon: ChildProcess | undefined;
  const logs: Record<string, unknown>[] = [];
  let sock = '';
  beforeAll(async () => {
    w = new World();
    sock = join(w.dir, 'afsteerd.sock');
    const keyFile = join(w.dir, 'cluster.key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    const config = join(w.dir, 'afsteerd.json');
    writeFileSync(
      config,
      JSON.stringify({
        nodeName: `ho-${w.id}`,
        pinDir: w.pinDir,
        stateDir: w.stateDir,
        controlSocket: sock,
        addresses: { ipv4: '127.0.0.1' },
        port: 20000 + (parseInt(w.id, 16) % 20000),
        keyFile,
        discovery: { static: [] },
      }),
    );
    daemon = spawn(join(ROOT, 'dist', 'afsteerd'), ['run', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let buf = '';
    daemon.stderr!.on('data', (d) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          logs.push({ raw: line });
        }
      }
    });
    await waitFor(() => existsSync(sock), 10_000, 'afsteerd listening');
  }, 30_000);
  afterAll(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGCONT');
      daemon.kill('SIGKILL');
      await exited(daemon);
    }
    w?.cleanup();
  });
  const handedOver = (containerId: string) => logs.filter((l) => l.msg === 'ran a handed-over ADD' && l.containerId === containerId);
  const down = () => join(w.dir, 'no-daemon.sock');

  it('afsteerd up: libcni ADD is run by afsteerd; CHECK and DEL pass; the endpoint is registered', async () => {
    const list = w.conflist('up', { afsteer: { daemonSocket: sock } });
    const ns = w.netns('up');
    const add = await w.driver('add', list, ns, 'ctr-up');
    expect(add.code, add.stderr).toBe(0);
    await waitFor(() => handedOver('ctr-up').length === 1, 2000, 'the daemon log line of the ADD');
    expect(handedOver('ctr-up')[0]!.exitCode).toBe(0);
    const result = JSON.parse(add.stdout) as { ips: { address: string }[] };
    expect(result.ips.map((i) => (i.address.includes(':') ? 6 : 4)).sort()).toEqual([4, 6]);
    expect(w.stateFiles()).toEqual(['ctr-up_eth0.json']);
    const check = await w.driver('check', list, ns, 'ctr-up');
    expect(check.code, check.stderr).toBe(0);
    const del = await w.driver('del', list, ns, 'ctr-up');
    expect(del.code, del.stderr).toBe(0);
    expect(w.stateFiles()).toEqual([]);
  });

  it('afsteerd down: libcni ADD, CHECK, DEL pass in-process', async () => {
    const list = w.conflist('down', { afsteer: { daemonSocket: down() } });
    const ns = w.netns('down');
    const add = await w.driver('add', list, ns, 'ctr-down');
    expect(add.code, add.stderr).toBe(0);
    expect(handedOver('ctr-down')).toEqual([]);
    expect((await w.driver('check', list, ns, 'ctr-down')).code).toBe(0);
    expect((await w.driver('del', list, ns, 'ctr-down')).code).toBe(0);
  });

  it('the same ADD prints the same result and the same state up and down; an invalid ADD the same error', async () => {
    const ns = w.netns('same');
    const bridgeConf = {
      cniVersion: '1.0.0',
      name: `same-${w.id}`,
      type: 'bridge',
      bridge: w.bridge,
      isGateway: true,
      ipMasq: false,
      ipam: { type: 'host-local', ranges: [[{ subnet: w.v4Subnet }], [{ subnet: w.v6Subnet }]], dataDir: w.ipamDir },
    };
    const env = { CNI_CONTAINERID: 'ctr-same', CNI_NETNS: ns, CNI_IFNAME: 'eth0' };
    const bridgePlugin = (verb: string) =>
      runWithInput(join(REFERENCE_PLUGINS, 'bridge'), [], JSON.stringify(bridgeConf), {
        PATH: process.env.PATH,
        CNI_COMMAND: verb,
        CNI_PATH: w.cniPath,
        ...env,
      });
    const prev = await bridgePlugin('ADD');
    expect(prev.code, prev.stderr).toBe(0);
    const prevResult = JSON.parse(prev.stdout) as Record<string, unknown>;
    const state = () => {
      const s = JSON.parse(readFileSync(join(w.stateDir, 'attachments', 'ctr-same_eth0.json'), 'utf8')) as Record<string, unknown>;
      delete s.createdAt;
      return s;
    };
    for (const cniVersion of ['1.0.0', '0.4.0', '1.1.0']) {
      const conf = (socket: string) => ({ cniVersion, name: `same-${w.id}`, ...w.afsteerConf({ daemonSocket: socket }), prevResult });
      const up = await w.plugin('ADD', conf(sock), env);
      expect(up.code, up.stderr).toBe(0);
      expect(handedOver('ctr-same').length).toBeGreaterThan(0);
      const upState = state();
      expect((await w.plugin('DEL', conf(sock), env)).code).toBe(0);
      const before = handedOver('ctr-same').length;
      const dn = await w.plugin('ADD', conf(down()), env);
      expect(dn.code, dn.stderr).toBe(0);
      expect(handedOver('ctr-same').length).toBe(before);
      expect(up.stdout).toBe(dn.stdout);
      expect(upState).toEqual(state());
      expect((await w.plugin('DEL', conf(down()), env)).code).toBe(0);
      logs.length = 0;
    }
    // A prevResult claiming an address the pod interface does not have: code 7, same text.
    const bad = structuredClone(prevResult) as { ips: { address: string }[] };
    bad.ips[0]!.address = bad.ips[0]!.address.includes(':') ? 'fd00:dead::9/64' : '10.254.254.9/24';
    const badConf = (socket: string) => ({
      cniVersion: '1.0.0',
      name: `same-${w.id}`,
      ...w.afsteerConf({ daemonSocket: socket }),
      prevResult: bad,
    });
    const upErr = await w.plugin('ADD', badConf(sock), env);
    const dnErr = await w.plugin('ADD', badConf(down()), env);
    expect(upErr.code).toBe(1);
    expect(handedOver('ctr-same').length).toBe(1);
    expect(JSON.parse(upErr.stdout).code).toBe(7);
    expect(upErr.stdout).toBe(dnErr.stdout);
    expect(upErr.code).toBe(dnErr.code);
    expect((await bridgePlugin('DEL')).code).toBe(0);
  }, 60_000);

  it('an afsteerd that hangs (SIGSTOP): ADD is done in-process within the short timeout, and not again by the resumed daemon', async () => {
    const list = w.conflist('hang', { afsteer: { daemonSocket: sock } });
    const listDown = w.conflist('hang-down', { afsteer: { daemonSocket: down() } });
    // The in-process ADD's own time, just before, for the bound.
    const nsRef = w.netns('hangref');
    let t0 = Date.now();
    expect((await w.driver('add', listDown, nsRef, 'ctr-hangref')).code).toBe(0);
    const inProcess = Date.now() - t0;
    expect((await w.driver('del', listDown, nsRef, 'ctr-hangref')).code).toBe(0);

    const ns = w.netns('hang');
    daemon!.kill('SIGSTOP');
    let add: Awaited<ReturnType<typeof w.driver>>;
    try {
      t0 = Date.now();
      add = await w.driver('add', list, ns, 'ctr-hang');
    } finally {
      daemon!.kill('SIGCONT');
    }
    const took = Date.now() - t0;
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout).ips).toHaveLength(2);
    // 30 ms hand-off timeout + 20 ms notification timeout, with room for this shared machine's noise.
    expect(took).toBeLessThan(inProcess + 1000);
    // Resumed, the daemon reads the abandoned request and answers it, but no go-ahead came: it runs nothing.
    await new Promise((r) => setTimeout(r, 500));
    expect(handedOver('ctr-hang')).toEqual([]);
    expect((await w.driver('check', list, ns, 'ctr-hang')).code).toBe(0);
    expect((await w.driver('del', list, ns, 'ctr-hang')).code).toBe(0);
    // And the daemon still takes the next ADD.
    const ns2 = w.netns('after');
    expect((await w.driver('add', list, ns2, 'ctr-after')).code).toBe(0);
    await waitFor(() => handedOver('ctr-after').length === 1, 2000, 'the resumed daemon running the next ADD');
    expect((await w.driver('del', list, ns2, 'ctr-after')).code).toBe(0);
  }, 60_000);
});
