/** CHECK names each missing piece; a repeated ADD keeps what DEL must undo; the log file gets the lines. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteEndpoint, getEndpoint, putEndpoint } from '../../../src/bpf/endpoint-map';
import { listPairs, registerRemote, setSteering, unregisterRemote } from '../../../src/bpf/steering';
import { announceSkip, IS_ROOT, sh, World } from '../../support/world';

announceSkip('CHECK details and repeated ADD');

describe.skipIf(!IS_ROOT)('CHECK details and repeated ADD', () => {
  let w: World;
  beforeAll(() => (w = new World()));
  afterAll(() => w?.cleanup());

  const state = (id: string) =>
    JSON.parse(readFileSync(join(w.stateDir, 'attachments', `${id}_eth0.json`), 'utf8')) as {
      hostIfname: string;
      hostIfindex: number;
      createdClsact: boolean;
      mtu: { before: number; after: number };
    };

  it('CHECK fails naming the MTU, then the map entry, then an address', async () => {
    const logFile = join(w.stateDir, 'afsteer.log'); // logFile must be under /var/log or the stateDir
    const list = w.conflist('chk', { afsteer: { logFile } });
    const ns = w.netns('a');
    const add = await w.driver('add', list, ns, 'ctr-a');
    expect(add.code, add.stderr).toBe(0);
    expect(readFileSync(logFile, 'utf8')).toMatch(/"msg":"attached".*"container":"ctr-a"/);

    await w.inNs(ns, ['ip', 'link', 'set', 'dev', 'eth0', 'mtu', '1400']);
    let check = await w.driver('check', list, ns, 'ctr-a');
    expect(check.stdout).toMatch(/eth0 has mtu 1400, expected 1460/);
    await w.inNs(ns, ['ip', 'link', 'set', 'dev', 'eth0', 'mtu', '1460']);

    const s = state('ctr-a');
    deleteEndpoint(w.pinDir, s.hostIfindex);
    check = await w.driver('check', list, ns, 'ctr-a');
    expect(check.stdout).toMatch(/endpoint map entry for veth\w+ \(ifindex \d+\) is missing/);

    // A repeated afsteer ADD (the bridge plugin refuses a second ADD, so afsteer is called alone
    // with the chain's result) repairs the attachment and keeps the first ADD's undo information.
    const conf = { cniVersion: '1.0.0', name: `chk-${w.id}`, ...w.afsteerConf({ logFile }), prevResult: add.json };
    const again = await w.plugin('ADD', conf, { CNI_CONTAINERID: 'ctr-a', CNI_NETNS: ns, CNI_IFNAME: 'eth0' });
    expect(again.code, again.stderr).toBe(0);
    expect((await w.driver('check', list, ns, 'ctr-a')).code).toBe(0);
    const s2 = state('ctr-a');
    expect(s2.createdClsact).toBe(true);
    expect(s2.mtu).toEqual({ before: 1500, after: 1460 });

    const v6 = (add.json as { ips: { address: string }[] }).ips.find((i) => i.address.includes(':'))!.address;
    await w.inNs(ns, ['ip', 'addr', 'del', v6, 'dev', 'eth0']);
    // (through the chain, bridge's CHECK would report it first; ask afsteer alone)
    check = await w.plugin('CHECK', conf, { CNI_CONTAINERID: 'ctr-a', CNI_NETNS: ns, CNI_IFNAME: 'eth0' });
    expect(check.stdout).toContain(`address ${v6} is missing on eth0`);

    expect((await w.driver('del', list, ns, 'ctr-a')).code).toBe(0);
    expect(w.stateFiles()).toEqual([]);
    expect(w.bridgePorts()).toEqual([]);
  });

  it('DEL of afsteer alone removes its filters and the clsact it created, leaving the pod working', async () => {
    const list = w.conflist('alone');
    const ns = w.netns('b');
    const add = await w.driver('add', list, ns, 'ctr-b');
    expect(add.code, add.stderr).toBe(0);
    const s = state('ctr-b');
    expect(sh('tc', ['qdisc', 'show', 'dev', s.hostIfname])).toContain('clsact');
    const conf = { cniVersion: '1.0.0', name: `alone-${w.id}`, ...w.afsteerConf(), prevResult: add.json };
    const del = await w.plugin('DEL', conf, { CNI_CONTAINERID: 'ctr-b', CNI_NETNS: ns, CNI_IFNAME: 'eth0' });
    expect(del.code, del.stdout).toBe(0);
    expect(sh('tc', ['qdisc', 'show', 'dev', s.hostIfname])).not.toContain('clsact');
    expect(await w.inNs(ns, ['ip', '-o', 'link', 'show', 'dev', 'eth0'])).toMatch(/ mtu 1500 /);
    expect((await w.driver('del', list, ns, 'ctr-b')).code).toBe(0);
  });

  it("ADD over a stale endpoint entry (another pod on a reused ifindex) drops that pod's steering", async () => {
    const list = w.conflist('stale');
    const ns = w.netns('c');
    const add = await w.driver('add', list, ns, 'ctr-c');
    expect(add.code, add.stderr).toBe(0);
    const s = state('ctr-c');
    // Pretend a pod that was never DELeted owned this ifindex and had a steered pair.
    putEndpoint(w.pinDir, s.hostIfindex, { ipv4: '10.250.0.9', ipv6: 'fd00:250::9', podIfindex: 99 });
    registerRemote(w.pinDir, { ipv4: '10.251.0.2', ipv6: 'fd00:251::2' });
    setSteering(w.pinDir, s.hostIfindex, '10.251.0.2', 'ipv6');
    expect(listPairs(w.pinDir).filter((p) => p.ifindex === s.hostIfindex)).toHaveLength(1);
    const conf = { cniVersion: '1.0.0', name: `stale-${w.id}`, ...w.afsteerConf(), prevResult: add.json };
    const again = await w.plugin('ADD', conf, { CNI_CONTAINERID: 'ctr-c', CNI_NETNS: ns, CNI_IFNAME: 'eth0' });
    expect(again.code, again.stdout).toBe(0);
    expect(again.stderr).toMatch(/replacing a stale endpoint entry/);
    expect(listPairs(w.pinDir).filter((p) => p.ifindex === s.hostIfindex)).toEqual([]);
    expect(getEndpoint(w.pinDir, s.hostIfindex)).toMatchObject({ routes: 0, routeBloom: 0n });
    unregisterRemote(w.pinDir, '10.251.0.2');
    expect((await w.driver('del', list, ns, 'ctr-c')).code).toBe(0);
  });
});
