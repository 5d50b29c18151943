/**
 * The pin layout on a real node (bpffs, tc, the real chain through libcni): the first ADD records
 * the layout; pins from before layouts were recorded are used as they are; a pod running an older
 * object's programs is moved onto this build's with tc filter replace while it pings its neighbour
 * (nothing lost), CHECK still passes, and the older program pins go once no state file names them
 * (not the echo reflector's, which no pod uses);
 * newer pins are used when readable and refused (before anything is loaded, saying what to run)
 * when not; migrations run once, in order, each recorded as it completes, and a map pin a layout
 * retired goes only once no older program directory is left.
 */
import { closeSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachEchoReflector, ECHO_PROGRAM } from '../../../src/bpf/echo-reflector';
import { listEndpoints } from '../../../src/bpf/endpoint-map';
import { PIN_LAYOUT } from '../../../src/bpf/layout-version';
import { check, closeFds, libbpf, objectId, openAndLoad, openPinned } from '../../../src/bpf/libbpf';
import { PIN_LAYOUT_MAP, type PinMigration, readPinLayout, recordPinLayout } from '../../../src/bpf/pin-layout';
import { bpfObject, ensurePrograms, PROGRAMS, programPinDir } from '../../../src/bpf/programs';
import { attach, query } from '../../../src/bpf/tc';
import { type AttachmentState, loadState, removeState, saveState } from '../../../src/node/attachments';
import { preparePins } from '../../../src/node/prepare-pins';
import { STATE_LAYOUT } from '../../../src/node/state-layout';
import { announceSkip, IS_ROOT, sh, World } from '../../support/world';

announceSkip('pin layout and program swap');

describe.skipIf(!IS_ROOT)('pin layout and program swap', () => {
  let w: World;
  let conflist: string;
  const pods: Record<string, { netns: string; ip4: string; state: AttachmentState }> = {};

  const add = async (name: string) => {
    const netns = w.netns(name);
    const r = await w.driver('add', conflist, netns, name);
    if (r.code !== 0) return { r };
    const ips = (r.json as { ips: { address: string }[] }).ips.map((i) => i.address.split('/')[0]!);
    pods[name] = { netns, ip4: ips.find((a) => !a.includes(':'))!, state: loadState(w.stateDir, name, 'eth0')! };
    return { r };
  };
  const running = (ifindex: number) => ({ ingress: query(ifindex, 'ingress'), egress: query(ifindex, 'egress') });

  beforeAll(async () => {
    w = new World();
    conflist = w.conflist('layout');
    for (const p of ['p1', 'p2']) expect((await add(p)).r.code).toBe(0);
  }, 60_000);
  afterAll(() => w?.cleanup());

  it("a node's first ADD records this build's layout; pins without a record (from before layouts) are used and get one", async () => {
    expect(readPinLayout(w.pinDir)).toEqual({ ...PIN_LAYOUT, recorded: true });
    sh('rm', [join(w.pinDir, PIN_LAYOUT_MAP)]);
    expect(readPinLayout(w.pinDir)).toEqual({ version: 1, readableFrom: 1, recorded: false });
    expect((await add('p3')).r.code).toBe(0);
    expect(readPinLayout(w.pinDir)).toEqual({ ...PIN_LAYOUT, recorded: true });
  });

  it("a pod on an older object's programs is moved onto this build's with tc filter replace, pinging all along; CHECK passes; the old pins go", async () => {
    const p1 = pods.p1!;
    const host = p1.state.hostIfindex!;
    const bridge = p1.state.bridge!.ifindex;
    // An "older" object: the same maps (reused by name), programs loaded again (new ids) and pinned in a directory of their own.
    const oldDir = join(w.pinDir, 'progs', '0000older0000000');
    pinPodPrograms(w.pinDir, oldDir);
    const old = {
      fromPod: openPinned(join(oldDir, PROGRAMS.fromPod)),
      toPod: openPinned(join(oldDir, PROGRAMS.toPod)),
      bridgeOut: openPinned(join(oldDir, PROGRAMS.bridgeOut)),
    };
    const oldIds = { ingress: objectId(old.fromPod), egress: objectId(old.toPod), bridge: objectId(old.bridgeOut) };
    try {
      attach(host, 'ingress', old.fromPod);
      attach(host, 'egress', old.toPod);
      attach(bridge, 'egress', old.bridgeOut);
    } finally {
      closeFds(old.fromPod, old.toPod, old.bridgeOut);
    }
    saveState(w.stateDir, { ...loadState(w.stateDir, 'p1', 'eth0')!, progDir: oldDir });
    expect(running(host)).toEqual({ ingress: oldIds.ingress, egress: oldIds.egress });

    // afsteerd's echo reflector (on the bridge here; the uplink on a node): its program directory is not a pod's and stays.
    attachEchoReflector(w.pinDir, 7171, [bridge]);
    const echoDirs = readdirSync(join(w.pinDir, 'progs')).filter((d) => existsSync(join(w.pinDir, 'progs', d, ECHO_PROGRAM)));
    expect(echoDirs).toHaveLength(1);

    // p1 pings p2 every 10 ms while afsteerd's start (here: preparePins with swap) moves it.
    const ping = w.inNs(p1.netns, ['ping', '-c', '150', '-i', '0.01', '-W', '1', pods.p2!.ip4]);
    await new Promise((r) => setTimeout(r, 500));
    const ready = await preparePins(w.pinDir, w.stateDir, { swap: true });
    closeFds(ready.fromPod, ready.toPod, ready.bridgeOut);
    const out = await ping;
    expect(out).toMatch(/150 packets transmitted, 150 received/);

    const cur = ensurePrograms(w.pinDir);
    try {
      expect(running(host)).toEqual({ ingress: objectId(cur.fromPod), egress: objectId(cur.toPod) });
      expect(query(bridge, 'egress')).toBe(objectId(cur.bridgeOut));
    } finally {
      closeFds(cur.fromPod, cur.toPod, cur.bridgeOut);
    }
    expect(ready.swap).toEqual({ replaced: 3, removedDirs: [oldDir] });
    expect(readdirSync(join(w.pinDir, 'progs')).sort()).toEqual([bpfObject().hash, ...echoDirs].sort());
    expect(loadState(w.stateDir, 'p1', 'eth0')!.progDir).toBe(programPinDir(w.pinDir, bpfObject().hash));
    // A host-veth attachment's file stays one the builds before layouts can read.
    expect(JSON.parse(readFileSync(join(w.stateDir, 'attachments', 'p1_eth0.json'), 'utf8')).layout).toEqual({
      version: STATE_LAYOUT.version,
      readableFrom: 1,
    });
    expect((await w.driver('check', conflist, p1.netns, 'p1')).code).toBe(0);
    // Nothing left to move: a second start replaces nothing.
    const again = await preparePins(w.pinDir, w.stateDir, { swap: true });
    closeFds(again.fromPod, again.toPod, again.bridgeOut);
    expect(again.swap).toEqual({ replaced: 0, removedDirs: [] });
  });

  it('newer pins: used as they are (record untouched) when this build can read them, refused before anything is loaded when it cannot', async () => {
    try {
      recordPinLayout(w.pinDir, { version: PIN_LAYOUT.version + 5, readableFrom: PIN_LAYOUT.version });
      expect((await add('p4')).r.code).toBe(0);
      expect(readPinLayout(w.pinDir)).toMatchObject({ version: PIN_LAYOUT.version + 5 });

      recordPinLayout(w.pinDir, { version: PIN_LAYOUT.version + 5, readableFrom: PIN_LAYOUT.version + 1 });
      const states = w.stateFiles().length;
      const endpoints = listEndpoints(w.pinDir).size;
      const { r } = await add('p5');
      expect(r.code).not.toBe(0);
      const err = r.json as { code: number; msg: string; details?: string };
      expect(`${err.msg} ${err.details ?? ''}`).toMatch(
        new RegExp(`pins are layout ${PIN_LAYOUT.version + 5}, which only code of layout ${PIN_LAYOUT.version + 1} or later can use`),
      );
      expect(`${err.msg} ${err.details ?? ''}`).not.toMatch(/remove|delete/i);
      expect(w.stateFiles().length).toBe(states);
      expect(listEndpoints(w.pinDir).size).toBe(endpoints);
      expect(readPinLayout(w.pinDir)).toMatchObject({ version: PIN_LAYOUT.version + 5, readableFrom: PIN_LAYOUT.version + 1 });
      // The runtime's DEL after a failed ADD (the bridge plugin made the veth): succeeds, afsteer has nothing of it.
      expect((await w.driver('del', conflist, join('/run/netns', `af${w.id}p5`), 'p5')).code).toBe(0);
    } finally {
      recordPinLayout(w.pinDir, PIN_LAYOUT);
    }
  });

  it('a migration chain runs once, in order, each step recorded as it completes; a retired map pin goes once no older program is pinned', async () => {
    const seen: { to: number; found: number | undefined }[] = [];
    const retiredName = 'afsteer_t_old';
    const step = (to: number, readableFrom: number, retires?: string[]): PinMigration => ({
      to,
      readableFrom,
      what: `test step to ${to}`,
      up: (pinDir) => {
        seen.push({ to, found: readPinLayout(pinDir)?.version });
        // Stands for a map the earlier layout used (pinned here, as the earlier build would have).
        if (retires) pinDummyMap(pinDir, retiredName);
      },
      ...(retires ? { retires } : {}),
    });
    const own = { version: PIN_LAYOUT.version + 2, readableFrom: PIN_LAYOUT.version + 2 };
    const migrations = [
      step(PIN_LAYOUT.version + 2, PIN_LAYOUT.version + 2, [retiredName]),
      step(PIN_LAYOUT.version + 1, PIN_LAYOUT.version),
    ];
    // An attachment whose veth is gone still names an older program directory: nothing moves it, its pins stay.
    const ghostDir = join(w.pinDir, 'progs', '0000ghost0000000');
    pinPodPrograms(w.pinDir, ghostDir);
    saveState(w.stateDir, {
      ...loadState(w.stateDir, 'p2', 'eth0')!,
      containerId: 'ghost',
      hostIfindex: 999_999,
      hostIfname: 'ghostveth',
      progDir: ghostDir,
    });
    try {
      const r = await preparePins(w.pinDir, w.stateDir, { swap: true }, own, migrations);
      closeFds(r.fromPod, r.toPod, r.bridgeOut);
      expect(r.migrated).toEqual([PIN_LAYOUT.version + 1, PIN_LAYOUT.version + 2]);
      expect(seen).toEqual([
        { to: PIN_LAYOUT.version + 1, found: PIN_LAYOUT.version },
        { to: PIN_LAYOUT.version + 2, found: PIN_LAYOUT.version + 1 },
      ]);
      expect(readPinLayout(w.pinDir)).toEqual({ ...own, recorded: true });
      // The older programs are still pinned (the ghost names them): the retired map stays.
      expect(r.retired).toEqual([]);
      expect(existsSync(join(w.pinDir, retiredName))).toBe(true);

      removeState(w.stateDir, 'ghost', 'eth0');
      const again = await preparePins(w.pinDir, w.stateDir, { swap: true }, own, migrations);
      closeFds(again.fromPod, again.toPod, again.bridgeOut);
      expect(again.migrated).toEqual([]);
      expect(seen).toHaveLength(2);
      expect(again.swap?.removedDirs).toEqual([ghostDir]);
      expect(again.retired).toEqual([retiredName]);
      expect(existsSync(join(w.pinDir, retiredName))).toBe(false);
    } finally {
      removeState(w.stateDir, 'ghost', 'eth0');
      recordPinLayout(w.pinDir, PIN_LAYOUT);
    }
  });
});

/** Pins a small array map at pinDir/name (a map of an earlier layout, for the retirement test). */
function pinDummyMap(pinDir: string, name: string): void {
  if (existsSync(join(pinDir, name))) return;
  const fd = check('bpf_map_create', libbpf().mapCreate(2, name, 4, 4, 1, null));
  try {
    check('bpf_obj_pin', libbpf().objPin(fd, join(pinDir, name)));
  } finally {
    closeSync(fd);
  }
}

/** Loads the pod object again over pinDir's maps (new program ids: an "older" build's) and pins its programs in dir. */
function pinPodPrograms(pinDir: string, dir: string): void {
  sh('mkdir', ['-p', dir]);
  const obj = openAndLoad(bpfObject().elf, 'afsteer', pinDir);
  try {
    for (const name of Object.values(PROGRAMS)) check(`pin ${name}`, libbpf().progPin(libbpf().findProg(obj, name), join(dir, name)));
  } finally {
    libbpf().objClose(obj);
  }
}
