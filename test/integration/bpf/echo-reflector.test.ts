/**
 * The kernel echo reflector (bpf/afsteer_echo.bpf.c) under a real afsteerd: node B's afsteerd
 * attaches it to the ingress of its uplink veth; echoes sent from node A over both families come
 * back with addresses and ports swapped, counted in B's afsteer_echo_stats (so the kernel, not
 * the userspace fallback, answered); a datagram that is not an echo, or one from the echo port
 * itself, is not sent back.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/** Sends each payload (hex) from A's address over family to B's port from srcPort; returns what came back (hex) within 500 ms. */
async function exchange(family: 4 | 6, srcPort: number, payloads: string[]): Promise<string[]> {
  const [from, to] = family === 4 ? ['10.77.0.1', '10.77.0.2'] : ['fd77:e::1', 'fd77:e::2'];
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
    const keyFile = join(dir, 'key');
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
    const cfg = join(dir, 'b.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        nodeName: 'echo-b',
        keyFile,
        pinDir,
        stateDir: join(dir, 'state'),
        controlSocket: join(dir, 'b.sock'),
        port: PORT,
        metrics: '',
        addresses: { ipv4: '10.77.0.2', ipv6: 'fd77:e::2' },
        logLevel: 'info',
      }),
    );
    const d = children.spawn('nsenter', [`--net=/run/netns/${nsB}`, join(AFSTEER_BIN, '..', 'afsteerd'), 'run', '--config', cfg], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    d.stderr!.on('data', (c) => (log += c));
    await waitFor(() => /afsteerd started/.test(log), 15_000, `afsteerd started (${log})`);
    expect(log).toMatch(/echo reflector attached/);
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
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sends echoes back over both families, addresses and ports swapped, counted by the kernel program', async () => {
    const before = echoesReflected(pinDir);
    const v4 = await exchange(4, 40001, [echo(1), echo(2)]);
    const v6 = await exchange(6, 40002, [echo(3)]);
    expect(v4.sort()).toEqual([`${echo(1)}@10.77.0.2:${PORT + 1}`, `${echo(2)}@10.77.0.2:${PORT + 1}`].sort());
    expect(v6).toEqual([`${echo(3)}@fd77:e::2:${PORT + 1}`]);
    expect(echoesReflected(pinDir) - before).toBe(3);
  });

  it('does not send back a datagram that is not an echo, nor an echo from the echo port itself', async () => {
    const before = echoesReflected(pinDir);
    const notEcho = Buffer.from('AF not an echo, a frame-like datagram').toString('hex');
    expect(await exchange(4, 40003, [notEcho])).toEqual([]);
    expect(await exchange(6, PORT + 1, [echo(4)])).toEqual([]);
    expect(echoesReflected(pinDir) - before).toBe(0);
  });

  it('is left attached when afsteerd stops (peers keep measuring across a restart)', async () => {
    for (const c of (children as unknown as { set: Set<import('node:child_process').ChildProcess> }).set) {
      c.kill('SIGTERM');
      await exited(c);
    }
    expect(await exchange(4, 40004, [echo(5)])).toEqual([`${echo(5)}@10.77.0.2:${PORT + 1}`]);
  });
});
