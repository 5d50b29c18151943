/**
 * The kernel echo reflector (bpf/afsteer_echo.bpf.c) under a real afsteerd: node B's afsteerd
 * attaches it to the ingress of its uplink veth (replacing a reflector map an older version left
 * pinned with another layout) and answers known peers only. With node A's afsteerd its peer,
 * echoes from A's control addresses over both families come back with addresses and ports
 * swapped, counted in B's afsteer_echo_stats (so the kernel, not the userspace fallback,
 * answered); one from an address no peer holds (spoofed, or a host that is no peer), a flood above
 * the per-source rate, a datagram that is not one echo, one from the echo port itself are not,
 * and the refusals are counted by reason, in the map and in B's /metrics; when A leaves, its
 * addresses leave the allow-list; the allow-list map refuses an address at its size limit.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO_MAPS, ECHO_RATE, EchoAllowList, EchoAllowListFull, echoCounts } from '../../../src/bpf/echo-maps';
import { echoesReflected } from '../../../src/bpf/echo-reflector';
import { Children, exited, nsExec, waitFor } from '../../support/process';
import { AFSTEER_BIN, announceSkip, IS_ROOT, sh } from '../../support/world';

announceSkip('kernel echo reflector');

const id = randomBytes(2).toString('hex');
const nsA = `afecha${id}`;
const nsB = `afechb${id}`;
const pinDir = `/sys/fs/bpf/afecho${id}`;
const PORT = 6370;
const children = new Children();
let dir = '';
let cfgA = '';
let logB = '';
const METRICS_PORT = 19000 + (Number.parseInt(id, 16) % 1000);

/** Starts node A's afsteerd (B's peer); resolves when B has A's addresses in its allow-list. */
async function startPeerA(): Promise<import('node:child_process').ChildProcess> {
  const a = children.spawn('nsenter', [`--net=/run/netns/${nsA}`, join(AFSTEER_BIN, '..', 'afsteerd'), 'run', '--config', cfgA], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  await waitFor(() => allowed().length === 2, 15_000, "A's addresses in B's echo allow-list");
  return a;
}

/** B's allow-list as its map holds it. */
function allowed(): string[] {
  const l = EchoAllowList.open(pinDir);
  try {
    return l
      .list()
      .map((e) => e.address)
      .sort();
  } finally {
    l.close();
  }
}

/** Sends each payload (hex) from A (its control address, or from) over family to B's echo port from srcPort; returns what came back (hex) within 500 ms. */
async function exchange(
  family: 4 | 6,
  srcPort: number,
  payloads: string[],
  from = family === 4 ? '10.77.0.1' : 'fd77:e::1',
): Promise<string[]> {
  const to = family === 4 ? '10.77.0.2' : 'fd77:e::2';
  const script = `
    const s = require('node:dgram').createSocket({ type: 'udp${family}' });
    const got = [];
    s.on('message', (m, r) => got.push(m.toString('hex') + '@' + r.address + ':' + r.port));
    s.bind(${srcPort}, '${from}', () => {
      for (const p of ${JSON.stringify(payloads)}) s.send(Buffer.from(p, 'hex'), ${PORT + 1}, '${to}');
      setTimeout(() => { console.log(JSON.stringify(got)); process.exit(0); }, 500);
    });`;
  return JSON.parse(await nsExec(`/run/netns/${nsA}`, [process.execPath, '-e', script])) as string[];
}

/** Sends one datagram (hex) from A with a source address no host holds (IP_TRANSPARENT: a forged source) to B's echo port. */
async function spoof(family: 4 | 6, from: string, payload: string): Promise<void> {
  const [af, level, opt, to] = family === 4 ? ['AF_INET', 0, 19, '10.77.0.2'] : ['AF_INET6', 41, 75, 'fd77:e::2'];
  const py = `import socket; s = socket.socket(socket.${af}, socket.SOCK_DGRAM); s.setsockopt(${level}, ${opt}, 1); s.bind(('${from}', 40099)); s.sendto(bytes.fromhex('${payload}'), ('${to}', ${PORT + 1}))`;
  await nsExec(`/run/netns/${nsA}`, ['python3', '-c', py]);
}

const echo = (n: number) => Buffer.concat([Buffer.from([0x41, 0x45, 1, 6, 0, 0, 0, 0]), Buffer.alloc(16, n)]).toString('hex');

describe.skipIf(!IS_ROOT)('kernel echo reflector', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `afsteer-echo-${id}-`));
    for (const ns of [nsA, nsB]) sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', `ea${id}`, 'netns', nsA, 'type', 'veth', 'peer', 'name', `eb${id}`, 'netns', nsB]);
    for (const [ns, dev, a4, a6] of [
      [nsA, `ea${id}`, '10.77.0.1', 'fd77:e::1'],
      [nsB, `eb${id}`, '10.77.0.2', 'fd77:e::2'],
    ] as const) {
      // No DAD on the link-local either: neighbour discovery would wait for it, delaying the first IPv6 echo.
      sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.accept_dad=0`]);
      sh('ip', ['-n', ns, 'addr', 'add', `${a4}/24`, 'dev', dev]);
      sh('ip', ['-n', ns, 'addr', 'add', `${a6}/64`, 'dev', dev, 'nodad']);
      sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    // Spoofing from A: it may send from addresses it does not hold (its own namespace's sysctls).
    sh('ip', ['netns', 'exec', nsA, 'sysctl', '-qw', 'net.ipv4.ip_nonlocal_bind=1', 'net.ipv6.ip_nonlocal_bind=1']);
    // A host on A's link that is no peer: a second address of A's no afsteerd announces.
    sh('ip', ['-n', nsA, 'addr', 'add', '10.77.0.9/24', 'dev', `ea${id}`]);
    sh('ip', ['-n', nsA, 'addr', 'add', 'fd77:e::9/64', 'dev', `ea${id}`, 'nodad']);
    // An older afsteerd left its config map pinned with the old layout (4 bytes: the port only).
    sh('mkdir', ['-p', pinDir]);
    sh('bpftool', [
      'map',
      'create',
      join(pinDir, ECHO_MAPS.cfg.name),
      'type',
      'array',
      'key',
      '4',
      'value',
      '4',
      'entries',
      '1',
      'name',
      'afsteer_echo_cf',
    ]);
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    const config = (name: 'a' | 'b', self: string[], peer: string[]) => {
      const f = join(dir, `${name}.json`);
      writeFileSync(
        f,
        JSON.stringify({
          nodeName: `echo-${name}`,
          keyFile,
          pinDir: name === 'b' ? pinDir : `${pinDir}-a`,
          stateDir: join(dir, `state-${name}`),
          controlSocket: join(dir, `${name}.sock`),
          port: PORT,
          metrics: name === 'b' ? `127.0.0.1:${METRICS_PORT}` : '',
          addresses: { ipv4: self[0], ipv6: self[1] },
          discovery: { multicast: false, static: [{ ipv4: peer[0], ipv6: peer[1] }] },
          timers: { peerTimeoutMs: 3000 },
          logLevel: 'info',
        }),
      );
      return f;
    };
    const cfgB = config('b', ['10.77.0.2', 'fd77:e::2'], ['10.77.0.1', 'fd77:e::1']);
    cfgA = config('a', ['10.77.0.1', 'fd77:e::1'], ['10.77.0.2', 'fd77:e::2']);
    const d = children.spawn('nsenter', [`--net=/run/netns/${nsB}`, join(AFSTEER_BIN, '..', 'afsteerd'), 'run', '--config', cfgB], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    d.stderr!.on('data', (c) => (logB += c));
    await waitFor(() => /afsteerd started/.test(logB), 15_000, `afsteerd started (${logB})`);
    expect(logB).toMatch(/echo reflector attached/);
    expect(logB).toMatch(/replacing an echo reflector map pinned by another version/);
    // Neighbours resolved first, so no echo waits behind neighbour discovery.
    for (const to of ['10.77.0.2', 'fd77:e::2']) sh('ip', ['netns', 'exec', nsA, 'ping', '-c', '1', '-W', '3', to]);
  }, 60_000);

  afterAll(async () => {
    children.killAll();
    for (const ns of [nsA, nsB]) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        // not made
      }
    }
    rmSync(pinDir, { recursive: true, force: true });
    rmSync(`${pinDir}-a`, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('an echo from an address no peer holds is not sent back before any peer is known, counted unknown-source', async () => {
    const before = echoCounts(pinDir);
    expect(await exchange(4, 40000, [echo(0)])).toEqual([]);
    expect(echoCounts(pinDir).refused['unknown-source'] - before.refused['unknown-source']).toBe(1);
  });

  it("sends a known peer's echoes back over both families, addresses and ports swapped, same length, counted by the kernel program", async () => {
    await startPeerA();
    expect(allowed()).toEqual(['10.77.0.1', 'fd77:e::1']);
    const before = echoesReflected(pinDir);
    const v4 = await exchange(4, 40001, [echo(1), echo(2)]);
    const v6 = await exchange(6, 40002, [echo(3)]);
    expect(v4.sort()).toEqual([`${echo(1)}@10.77.0.2:${PORT + 1}`, `${echo(2)}@10.77.0.2:${PORT + 1}`].sort());
    expect(v6).toEqual([`${echo(3)}@fd77:e::2:${PORT + 1}`]);
    // At least these three (A's afsteerd probes B with echoes meanwhile).
    expect(echoesReflected(pinDir) - before).toBeGreaterThanOrEqual(3);
  });

  it('refuses, and counts by reason, a spoofed source, a host that is no peer, a long echo, one from the echo port, and a flood above the rate', async () => {
    const before = echoCounts(pinDir);
    // Spoofed (addresses no one holds) and a host on the link that is no peer: each one refused, counted.
    for (const [family, from] of [
      [4, '10.99.0.7'],
      [6, 'fd99::7'],
    ] as const) {
      const n = echoCounts(pinDir).refused['unknown-source'];
      await spoof(family, from, echo(4));
      await waitFor(() => echoCounts(pinDir).refused['unknown-source'] - n === 1, 2000, `refused from ${from}`);
    }
    for (const [family, from] of [
      [4, '10.77.0.9'],
      [6, 'fd77:e::9'],
    ] as const) {
      const n = echoCounts(pinDir).refused['unknown-source'];
      expect(await exchange(family, 40003, [echo(4)], from)).toEqual([]);
      expect(echoCounts(pinDir).refused['unknown-source'] - n, `refused from ${from}`).toBe(1);
    }
    // From the known peer, but not one echo long (no reply larger than the request, nor any other size).
    expect(await exchange(4, 40005, [echo(6) + '00'.repeat(1000)])).toEqual([]);
    expect(await exchange(4, PORT + 1, [echo(7)], '10.77.0.9')).toEqual([]);
    // A flood from the known peer: the burst and the rate pass, the rest is refused.
    const flood = await exchange(
      4,
      40006,
      Array.from({ length: 2000 }, () => echo(8)),
    );
    const after = echoCounts(pinDir);
    const d = (r: keyof typeof after.refused) => after.refused[r] - before.refused[r];
    expect(d('unknown-source')).toBe(4);
    expect(d('size')).toBe(1);
    expect(d('loop')).toBe(1);
    expect(flood.length).toBeGreaterThanOrEqual(ECHO_RATE.burst);
    expect(flood.length).toBeLessThan(2000);
    // A's afsteerd probes from the same address and bucket: its echoes may be among the refused.
    expect(d('rate')).toBeGreaterThanOrEqual(2000 - flood.length);
    expect(after.reflected - before.reflected).toBeGreaterThanOrEqual(flood.length);
    // Not an echo at all: not the reflector's business, passed untouched (and not counted).
    const notEcho = Buffer.from('AF not an echo, a frame-like datagram').toString('hex');
    expect(await exchange(4, 40007, [notEcho])).toEqual([]);
  });

  it("the refusals are in B's /metrics", async () => {
    const text = await nsExec(`/run/netns/${nsB}`, ['curl', '-sf', `http://127.0.0.1:${METRICS_PORT}/metrics`]);
    const value = (reason: string) =>
      Number(new RegExp(`afsteer_echo_refused_total\\{reflector="kernel",reason="${reason}"\\} (\\d+)`).exec(text)?.[1] ?? -1);
    expect(value('unknown-source')).toBeGreaterThanOrEqual(5);
    expect(value('rate')).toBeGreaterThan(0);
    expect(value('size')).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/afsteer_echo_allowed_sources 2/);
    expect(text).toMatch(/afsteer_echo_reflected_total\{reflector="kernel"\} [1-9]/);
  });

  it('when the peer leaves, its addresses leave the allow-list and its echoes are refused', async () => {
    for (const c of (children as unknown as { set: Set<import('node:child_process').ChildProcess> }).set) {
      if (!c.spawnargs.includes(cfgA)) continue;
      c.kill('SIGTERM');
      await exited(c);
    }
    await waitFor(() => allowed().length === 0, 15_000, "A's addresses gone from B's echo allow-list");
    const before = echoCounts(pinDir);
    expect(await exchange(4, 40008, [echo(9)])).toEqual([]);
    expect(echoCounts(pinDir).refused['unknown-source'] - before.refused['unknown-source']).toBe(1);
    // It comes back: allowed again.
    await startPeerA();
    expect(await exchange(6, 40009, [echo(10)])).toEqual([`${echo(10)}@fd77:e::2:${PORT + 1}`]);
  });

  it('is left attached when afsteerd stops (peers keep measuring across a restart)', async () => {
    for (const c of (children as unknown as { set: Set<import('node:child_process').ChildProcess> }).set) {
      if (c.spawnargs.includes(cfgA)) continue;
      c.kill('SIGTERM');
      await exited(c);
    }
    expect(await exchange(4, 40010, [echo(11)])).toEqual([`${echo(11)}@10.77.0.2:${PORT + 1}`]);
  });

  it('the allow-list map refuses an address at its size limit', () => {
    const l = EchoAllowList.open(pinDir);
    try {
      const room = ECHO_MAPS.peers.maxEntries - l.list().length;
      for (let i = 0; i < room; i++) l.add(`fd55::${(i + 1).toString(16)}`);
      expect(l.list().length).toBe(ECHO_MAPS.peers.maxEntries);
      expect(() => l.add('10.55.0.1')).toThrow(EchoAllowListFull);
      // Still at the limit, nothing evicted: a known peer stays allowed.
      expect(l.list().length).toBe(ECHO_MAPS.peers.maxEntries);
    } finally {
      l.close();
    }
  });
});
