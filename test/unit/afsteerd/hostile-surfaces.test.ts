/**
 * Hostile input against afsteerd's surfaces, unprivileged (the root suite with a real daemon is
 * test/integration/afsteerd/hostile-surfaces.test.ts): malformed request-targets and foreign Host
 * names on the metrics listener, more idle connections than its cap, pipelined control requests
 * whose answers are never read, a control socket in a directory others may write, a pins file
 * that is a FIFO, a link, oversized or half bad, prototype-named keys in the pins and the config,
 * etcd TLS files that are FIFOs, devices, oversized or readable by others. Extend it with each new
 * surface: one describe per surface, each case a thing a local user or a careless operator can do.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tryHandOff } from '../../../src/cni/handoff-client';
import { notifyDaemon } from '../../../src/cni/notify';
import { controlRequest } from '../../../src/control/client';
import { serveControl } from '../../../src/negotiator/control/socket-server';
import { loadDaemonConfig, parseDaemonConfig } from '../../../src/negotiator/daemon-config';
import { EtcdDiscovery } from '../../../src/negotiator/discovery/etcd';
import { History } from '../../../src/negotiator/ops/history';
import { serveWeb } from '../../../src/negotiator/ops/http-server';
import { MAX_SUMMARY_ROWS, type Summary, type SummaryQuery } from '../../../src/negotiator/ops/summary';
import { PINS_FILE, PinStore, preferTarget } from '../../../src/negotiator/pairs/pins';
import { ensurePrivateDir, readConfiguredFile, readOwnFileCapped, UnsafePathError } from '../../../src/util/safe-fs';

const PROTOTYPE_NAMES = [
  'constructor',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  '__proto__',
  '__defineGetter__',
  '__lookupSetter__',
];

const scratch = mkdtempSync(join(tmpdir(), 'afsteer-hostile-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let seq = 0;
/** A fresh private directory under the scratch directory. */
const freshDir = (mode = 0o700): string => {
  const d = join(scratch, `d${seq++}`);
  mkdirSync(d, { mode });
  chmodSync(d, mode);
  return d;
};

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Resolves when cond() holds, checked on every event of the emitters and every 10 ms; rejects naming what after ms. */
function until(cond: () => boolean, what: string, ms = 4000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() - t0 > ms) return reject(new Error(`waited ${ms} ms for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

/** Sends raw bytes on a new connection and resolves with everything the server sent until it closed or answered once. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => c.write(text));
    let out = '';
    const timer = setTimeout(() => {
      c.destroy();
      resolve(out);
    }, 3000);
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      out += d;
      if (/\r\n\r\n/.test(out)) {
        clearTimeout(timer);
        c.destroy();
        resolve(out);
      }
    });
    c.on('error', reject);
    c.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}
const statusOf = (answer: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

describe('metrics listener: request-targets, Host names, connection cap', () => {
  const refused: Record<string, number> = {};
  const httpRefusals = () => Object.entries(refused).reduce((a, [k, v]) => a + (k.startsWith('http-') ? v : 0), 0);
  const start = async (maxConnections?: number): Promise<{ server: HttpServer; port: number }> => {
    const server = await serveWeb(
      '127.0.0.1',
      0,
      {
        metrics: { registry: undefined as never, contentType: 'text/plain; version=0.0.4', text: async () => 'afsteer_peers 0\n' },
        history: new History(),
        node: 'node-a',
        activePeers: () => new Set(),
        refused,
      },
      maxConnections === undefined ? {} : { maxConnections },
    );
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
    );
    return { server, port: (server.address() as { port: number }).port };
  };

  it.each([
    ['an unterminated IPv6 host', 'GET //[ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ['an absolute-form target with port 99999', 'GET http://a:99999/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ['an absolute-form target with a bad host', 'GET http://[zz]/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ['a target that is no path', 'GET metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ['an asterisk target', 'GET * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ['a bracket in the path', 'GET /me[trics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ['a backslash in the path', 'GET /\\metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ['another scheme', 'GET file:///etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
  ])('%s is a 400, and the server answers the next request', async (_what, request) => {
    const { port } = await start();
    const before = httpRefusals();
    expect(statusOf(await raw(port, request))).toBe(400);
    expect(statusOf(await raw(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'))).toBe(200);
    expect(httpRefusals()).toBe(before + 1);
  });

  it('hostile /summary.json and /history.json parameters are bounded: limit in [1, 500], q ≤ 253 characters, an unknown state ignored, ≤ 50 peers asked', async () => {
    const asked: SummaryQuery[] = [];
    const server = await serveWeb('127.0.0.1', 0, {
      metrics: { registry: undefined as never, contentType: 'text/plain; version=0.0.4', text: async () => '' },
      history: new History(),
      node: 'node-a',
      activePeers: () => new Set(),
      summary: (q) => {
        asked.push(q);
        return { totals: {}, matched: 0, peers: [] } as unknown as Summary;
      },
    });
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const port = (server.address() as { port: number }).port;
    const get = (path: string) => raw(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    for (const [query, limit] of [
      ['limit=-5', 1],
      ['limit=1e99', MAX_SUMMARY_ROWS],
      ['limit=abc', 50],
      ['limit=0', 50],
      ['limit=NaN', 50],
    ] as const) {
      expect(statusOf(await get(`/summary.json?${query}`)), query).toBe(200);
      expect(asked.at(-1)!.limit, query).toBe(limit);
    }
    expect(statusOf(await get(`/summary.json?q=${'x'.repeat(6000)}&state=%3Cscript%3E`))).toBe(200);
    expect(asked.at(-1)!.q).toHaveLength(253);
    expect(asked.at(-1)!.state).toBeUndefined();
    expect(statusOf(await get('/summary.json?state=blackhole'))).toBe(200);
    expect(asked.at(-1)!.state).toBe('blackhole');
    const many = Array.from({ length: 400 }, (_, i) => `p${i}`).join(',');
    const h = await get(`/history.json?peers=${many}&limit=-1&since=abc`);
    expect(statusOf(h)).toBe(200);
  });

  it('an absolute-form target for a loopback host is served like its path', async () => {
    const { port } = await start();
    expect(statusOf(await raw(port, `GET http://127.0.0.1:${port}/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`))).toBe(200);
  });

  it.each([
    ['evil.example'],
    ['evil.example:9617'],
    ['127.0.0.1.nip.io'],
    ['localhost.evil.example'],
    ['10.0.0.1:9617'],
    ['[fe80::1]:9617'],
    ['127.0.0.1:9617, evil.example'],
  ])('bound to loopback, Host %s is refused (403: DNS rebinding) and counted', async (host) => {
    const { port } = await start();
    const before = refused['http-host'] ?? 0;
    for (const path of ['/', '/history.json', '/metrics'])
      expect(statusOf(await raw(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`)), path).toBe(403);
    expect(refused['http-host']).toBe(before + 3);
  });

  it.each([
    ['localhost'],
    ['localhost:9617'],
    ['LocalHost:9617'],
    ['page.localhost:9617'],
    ['127.0.0.1:9617'],
    ['127.3.4.5'],
    ['[::1]:9617'],
    ['[0:0:0:0:0:0:0:1]'],
  ])('bound to loopback, Host %s is served', async (host) => {
    const { port } = await start();
    expect(statusOf(await raw(port, `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`))).toBe(200);
  });

  it('more idle connections than the cap: the oldest idle are closed first, /metrics still answers, each closing counted', async () => {
    const cap = 8;
    const { port } = await start(cap);
    const socks: Socket[] = [];
    const closed: number[] = [];
    for (let i = 0; i < 3 * cap; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => closed.push(i));
      s.resume();
      socks.push(s);
      cleanups.push(() => s.destroy());
      await new Promise((r) => s.once('connect', r));
    }
    await until(() => closed.length >= 2 * cap, `${2 * cap} of ${3 * cap} idle connections closed`);
    // The oldest ones went, in order; the newest `cap` are still open.
    expect(closed.slice(0, 2 * cap).sort((a, b) => a - b)).toEqual([...Array(2 * cap).keys()]);
    const r = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) });
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('afsteer_peers 0');
    expect(refused['http-connection-cap']).toBeGreaterThanOrEqual(2 * cap);
  });

  it('a busy connection is not closed for the cap: a connection arriving when all are busy is', async () => {
    const cap = 2;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let waiting = 0;
    const server = await serveWeb(
      '127.0.0.1',
      0,
      {
        metrics: {
          registry: undefined as never,
          contentType: 'text/plain',
          text: async () => {
            waiting++;
            await gate;
            return 'x 1\n';
          },
        },
        history: new History(),
        node: 'n',
        activePeers: () => new Set(),
      },
      { maxConnections: cap },
    );
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          release();
          server.close(() => r());
          server.closeAllConnections();
        }),
    );
    const port = (server.address() as { port: number }).port;
    const slow = [fetch(`http://127.0.0.1:${port}/metrics`), fetch(`http://127.0.0.1:${port}/metrics`)];
    // Both requests in flight (a connection that has not sent its request yet is idle, not busy).
    await until(() => waiting === cap, 'two busy connections');
    // A third connection: both are busy, so the newcomer is the one closed.
    expect(await raw(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')).toBe('');
    release();
    for (const r of await Promise.all(slow)) expect(r.status).toBe(200);
  });
});

describe('control socket: pipelined requests whose answers are not read', () => {
  it('stops reading while answers are not drained: the handler runs a bounded number of times, then every answer arrives in order', async () => {
    const dir = freshDir();
    const path = join(dir, 'c.sock');
    let calls = 0;
    const pad = 'x'.repeat(64 * 1024);
    const server = await serveControl(path, () => ({ ok: true, n: calls++, pad }));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const N = 2000;
    const c = connect(path);
    cleanups.push(() => c.destroy());
    c.on('error', () => {});
    c.pause();
    await new Promise((r) => c.once('connect', r));
    c.write('{"op":"status"}\n'.repeat(N));
    // Let the server run as far as it will while nothing is read.
    let last = -1;
    await until(
      () => {
        const still = calls === last;
        last = calls;
        return calls >= N || (calls > 0 && still);
      },
      'the server to stop answering',
      20_000,
    ).catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    expect(calls, 'answers produced while none was read').toBeLessThanOrEqual(64);
    // Reading again: every answer, in order.
    let buf = '';
    let got = 0;
    let inOrder = true;
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const r = JSON.parse(buf.slice(0, nl)) as { n: number };
        buf = buf.slice(nl + 1);
        if (r.n !== got) inOrder = false;
        got++;
      }
    });
    c.resume();
    await until(() => got === N, `${N} answers`, 60_000);
    expect(inOrder).toBe(true);
  }, 90_000);

  it('a line over the limit is refused and the connection ended (what held)', async () => {
    const dir = freshDir();
    const path = join(dir, 'c.sock');
    const server = await serveControl(path, () => ({ ok: true }));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const c = connect(path);
    cleanups.push(() => c.destroy());
    let out = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (out += d));
    c.on('error', () => {});
    c.write('{"op":"status","x":"' + 'a'.repeat(200 * 1024));
    await new Promise((r) => c.once('close', r));
    expect(out).toMatch(/request too large/);
  });
});

describe('socket identity: the CLI and the plugin check the directory and the owner before talking', () => {
  /** A control socket answering status with a forged node, counting connections. */
  const forged = async (dir: string): Promise<{ path: string; conns: () => number }> => {
    const path = join(dir, 'afsteerd.sock');
    let n = 0;
    const s: Server = createServer((c) => {
      n++;
      c.on('error', () => {});
      c.on('data', () => c.write('{"ok":true,"node":"forged","v":1,"ready":true}\n'));
    });
    await new Promise<void>((r) => s.listen(path, () => r()));
    cleanups.push(() => new Promise((r) => s.close(r)));
    return { path, conns: () => n };
  };

  it.each([
    ['a directory writable by others', 0o777],
    ['a sticky directory writable by others', 0o1777],
    ['a group-writable directory', 0o770],
  ])('%s: status is refused naming the directory, nothing is sent', async (_what, mode) => {
    const dir = freshDir(0o700);
    const { path, conns } = await forged(dir);
    chmodSync(dir, mode);
    await expect(controlRequest(path, { op: 'status' }, 2000)).rejects.toThrow(new RegExp(`${dir}.*writable by group or others`));
    expect(conns()).toBe(0);
  });

  it('a symbolic link as the socket: refused, nothing is sent', async () => {
    const dir = freshDir(0o700);
    const { path, conns } = await forged(dir);
    const link = join(dir, 'link.sock');
    symlinkSync(path, link);
    await expect(controlRequest(link, { op: 'status' }, 2000)).rejects.toThrow(/symbolic link/);
    await expect(controlRequest(join(dir, 'missing.sock'), { op: 'status' }, 2000)).rejects.toThrow(/cannot reach afsteerd.*ENOENT/);
    expect(conns()).toBe(0);
  });

  it('the plugin neither hands its ADD over nor notifies through a socket in a directory others may write', async () => {
    const dir = freshDir(0o700);
    const { path, conns } = await forged(dir);
    chmodSync(dir, 0o777);
    const stdin = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'afsteer', daemonSocket: path });
    expect(await tryHandOff({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/proc/self/ns/net', CNI_IFNAME: 'eth0' }, stdin)).toBe(
      undefined,
    );
    await notifyDaemon(path, 'add', 'c1', 'eth0');
    expect(conns()).toBe(0);
    // The same socket in a private directory is talked to (what the check must keep working).
    chmodSync(dir, 0o700);
    expect(await controlRequest(path, { op: 'status' }, 2000)).toMatchObject({ node: 'forged' });
  });
});

describe('stateDir and the files afsteerd reads by name (safe-fs)', () => {
  it.each([
    ['writable by others', 0o777],
    ['sticky and writable by others', 0o1777],
    ['group-writable', 0o775],
  ])('a stateDir %s is refused naming it', (_what, mode) => {
    const dir = freshDir(mode);
    expect(() => ensurePrivateDir(dir)).toThrow(new RegExp(`^${dir} is writable by group or others`));
  });

  it('a stateDir that is a symbolic link is refused; a missing one is made private; a 0755 one is fine', () => {
    const real = freshDir();
    const link = join(scratch, `link${seq++}`);
    symlinkSync(real, link);
    expect(() => ensurePrivateDir(link)).toThrow(/is a symbolic link/);
    const made = join(freshDir(), 'state');
    ensurePrivateDir(made);
    expect(statSync(made).mode & 0o777).toBe(0o700);
    ensurePrivateDir(freshDir(0o755));
  });

  it('a configured file is read through links of root (or this user), also in a world-writable volume (a Kubernetes ConfigMap, 0777)', () => {
    const vol = freshDir(0o777);
    mkdirSync(join(vol, '..2024_01_01'));
    writeFileSync(join(vol, '..2024_01_01', 'ca.crt'), 'CA');
    symlinkSync('..2024_01_01', join(vol, '..data'));
    symlinkSync('..data/ca.crt', join(vol, 'ca.crt'));
    expect(readConfiguredFile(join(vol, 'ca.crt')).toString()).toBe('CA');
    expect(readConfiguredFile(`${vol}/./..data/../ca.crt`).toString()).toBe('CA');
    symlinkSync('loop', join(vol, 'loop'));
    expect(() => readConfiguredFile(join(vol, 'loop'))).toThrow(/more than 40 symbolic links/);
    expect(() => readConfiguredFile(join(vol, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('a device, a FIFO, a directory or an oversized file is refused before anything is read', () => {
    const dir = freshDir();
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    writeFileSync(join(dir, 'big'), Buffer.alloc(1025));
    for (const [path, why] of [
      ['/dev/zero', /is a device/],
      ['/dev/null', /is a device/],
      [join(dir, 'fifo'), /is a FIFO/],
      [dir, /directory/],
      [join(dir, 'big'), /is 1025 bytes, more than the 1024 accepted/],
    ] as const)
      expect(() => readOwnFileCapped(path, 1024), path).toThrow(
        expect.objectContaining({ name: UnsafePathError.name, message: expect.stringMatching(why) }),
      );
  });
});

describe('pins: prototype names, a half-bad file, planted files', () => {
  const noPeers = { has: () => false, values: () => [] };
  const noPods = { get: () => undefined };

  it.each(PROTOTYPE_NAMES)('prefer %s: neither a known peer node nor a known CNF (refused)', (name) => {
    const pins = new PinStore(freshDir());
    expect(preferTarget(name, noPeers, noPods, pins)).toBeUndefined();
  });

  it('a pair whose pods or peer have prototype names has no pin', () => {
    const pins = new PinStore(freshDir());
    pins.set('node', 'node-b', 'IPv4');
    for (const name of PROTOTYPE_NAMES) {
      expect(pins.ownPin({ localCnf: name, remoteCnf: name, peerNode: name })).toBeUndefined();
    }
  });

  it('a real peer named constructor can be pinned and the pin survives a reload', () => {
    const dir = freshDir();
    const pins = new PinStore(dir);
    const peers = { has: (n: string) => n === 'constructor', values: () => [] };
    expect(preferTarget('constructor', peers, noPods, pins)).toBe('node');
    pins.set('node', 'constructor', 'IPv6');
    const again = new PinStore(dir);
    expect(again.list()).toEqual({ nodes: { constructor: 'IPv6' }, cnfs: {} });
    expect(again.ownPin({ localCnf: 'a/x', remoteCnf: 'b/y', peerNode: 'constructor' })).toEqual({ family: 'IPv6', source: 'node' });
    expect(again.ownPin({ localCnf: 'a/x', remoteCnf: 'b/y', peerNode: 'toString' })).toBeUndefined();
  });

  it('a pins file with bad entries keeps the good ones, each bad entry dropped with one line', () => {
    const dir = freshDir();
    writeFileSync(
      join(dir, PINS_FILE),
      '{"version":1,"nodes":{"node-b":"IPv4","__defineGetter__":"IPv6","__proto__":"IPv6","x":"IPv9","bad name":"IPv4"},' +
        '"cnfs":{"ns/pod":"IPv6","toString":"IPv4","/x":"IPv4"}}',
      { mode: 0o600 },
    );
    const errors: string[] = [];
    const pins = new PinStore(dir, (e) => errors.push(e.message));
    expect(pins.list()).toEqual({ nodes: { 'node-b': 'IPv4' }, cnfs: { 'ns/pod': 'IPv6', toString: 'IPv4' } });
    expect(errors).toHaveLength(5);
    for (const e of errors) expect(e.split('\n')).toHaveLength(1);
    expect(errors.join('\n')).toMatch(/__defineGetter__/);
    expect(pins.ownPin({ localCnf: 'ns/pod', remoteCnf: 'x', peerNode: 'node-b' })).toEqual({ family: 'IPv6', source: 'cnf' });
  });

  it('a pins file of another version or shape: no pins, one line', () => {
    const dir = freshDir();
    for (const text of ['{"version":2,"nodes":{},"cnfs":{}}', '[]', '{"version":1,"nodes":[],"cnfs":{}}', 'not json']) {
      writeFileSync(join(dir, PINS_FILE), text, { mode: 0o600 });
      const errors: string[] = [];
      expect(new PinStore(dir, (e) => errors.push(e.message)).list()).toEqual({ nodes: {}, cnfs: {} });
      expect(errors).toHaveLength(1);
    }
  });

  it('a FIFO as the pins file is refused without blocking', () => {
    const dir = freshDir();
    execFileSync('mkfifo', [join(dir, PINS_FILE)]);
    const errors: string[] = [];
    expect(new PinStore(dir, (e) => errors.push(e.message)).list()).toEqual({ nodes: {}, cnfs: {} });
    expect(errors).toEqual([expect.stringMatching(/afsteerd-pins\.json is a FIFO, not a regular file/)]);
  });

  it('a link to another file is refused and nothing of that file is logged', () => {
    const dir = freshDir();
    const secret = join(dir, 'secret');
    writeFileSync(secret, 'SECRET-first-bytes root:x:0:0', { mode: 0o600 });
    symlinkSync(secret, join(dir, PINS_FILE));
    const errors: string[] = [];
    expect(new PinStore(dir, (e) => errors.push(e.message)).list()).toEqual({ nodes: {}, cnfs: {} });
    expect(errors).toEqual([expect.stringMatching(/is a symbolic link/)]);
    expect(errors.join()).not.toMatch(/SECRET|root:x/);
  });

  it('a pins file that is not JSON: refused without quoting it', () => {
    const dir = freshDir();
    writeFileSync(join(dir, PINS_FILE), 'SECRET-first-bytes root:x:0:0', { mode: 0o600 });
    const errors: string[] = [];
    new PinStore(dir, (e) => errors.push(e.message));
    expect(errors).toHaveLength(1);
    expect(errors.join()).not.toMatch(/SECRET|root:x/);
  });

  it('an oversized pins file is refused', () => {
    const dir = freshDir();
    writeFileSync(join(dir, PINS_FILE), '{"version":1,"nodes":{"node-b":"IPv4"},"cnfs":{}}' + ' '.repeat(2 << 20), { mode: 0o600 });
    const errors: string[] = [];
    expect(new PinStore(dir, (e) => errors.push(e.message)).list()).toEqual({ nodes: {}, cnfs: {} });
    expect(errors).toEqual([expect.stringMatching(/more than the 1048576 accepted/)]);
  });

  it('saving writes nothing through a link planted at the temporary name', () => {
    const dir = freshDir();
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'keep');
    symlinkSync(victim, join(dir, `.${PINS_FILE}.${process.pid}.tmp`));
    new PinStore(dir).set('node', 'node-b', 'IPv4');
    expect(readFileSync(victim, 'utf8')).toBe('keep');
    expect(new PinStore(dir).list().nodes).toEqual({ 'node-b': 'IPv4' });
  });
});

describe('config file', () => {
  it.each([
    ['a FIFO', (d: string) => execFileSync('mkfifo', [join(d, 'c.json')]), /is a FIFO, not a regular file/],
    ['a device', (d: string) => symlinkSync('/dev/zero', join(d, 'c.json')), /\/dev\/zero is a device/],
    ['oversized', (d: string) => writeFileSync(join(d, 'c.json'), ' '.repeat(2 << 20)), /more than the 1048576 accepted/],
  ])('%s is refused without blocking, one line naming it', (_what, make, why) => {
    const d = freshDir();
    make(d);
    expect(() => loadDaemonConfig(join(d, 'c.json'))).toThrow(why);
  });
});

describe('config: prototype-named keys', () => {
  const base = { nodeName: 'n1', keyFile: '/k' };
  it.each(PROTOTYPE_NAMES)('%s as a key anywhere in the config is an unknown key', (name) => {
    for (const at of [[], ['timers'], ['discovery'], ['policy'], ['protection']]) {
      const text = at.length
        ? JSON.stringify({ ...base, [at[0]!]: { ...(at[0] === 'policy' ? { criterion: 'lowest-latency' } : {}) } }).replace(
            `"${at[0]}":{`,
            `"${at[0]}":{"${name}":1${at[0] === 'policy' ? ',' : ''}`,
          )
        : JSON.stringify(base).replace('{', `{"${name}":1,`);
      expect(() => parseDaemonConfig(text), `${name} in ${at.join('.') || 'top level'}`).toThrow(/unknown key/);
    }
  });

  it('metricsMaxConnections: default, bounds', () => {
    expect(parseDaemonConfig(JSON.stringify(base)).metricsMaxConnections).toBe(64);
    expect(parseDaemonConfig(JSON.stringify({ ...base, metricsMaxConnections: 4 })).metricsMaxConnections).toBe(4);
    for (const bad of [0, 3, 100_001, 1.5, '64', null])
      expect(() => parseDaemonConfig(JSON.stringify({ ...base, metricsMaxConnections: bad }))).toThrow(/metricsMaxConnections/);
  });
});

describe('etcd TLS files', () => {
  const cfg = (files: { ca?: string; cert?: string; key?: string }) => ({
    endpoints: ['https://127.0.0.1:1'],
    prefix: '/afsteer/nodes/',
    leaseTtlS: 10,
    maxRecordAgeS: 300,
    ...files,
  });
  const discovery = (files: { ca?: string; cert?: string; key?: string }) =>
    new EtcdDiscovery({
      config: cfg(files),
      key: Buffer.alloc(32, 1),
      self: { node: 'n1', addresses: { ipv4: '192.0.2.1' }, port: 6170, families: ['IPv4'] },
      opTimeoutMs: 500,
      log: { info() {}, warn() {}, error() {}, debug() {} } as never,
    });
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

  it.each([
    [
      'ca',
      'a FIFO',
      (d: string) => {
        execFileSync('mkfifo', [join(d, 'ca.pem')]);
        return { ca: join(d, 'ca.pem') };
      },
      /ca .*is a FIFO/,
    ],
    ['ca', '/dev/zero', () => ({ ca: '/dev/zero' }), /ca \/dev\/zero.*is a device/],
    [
      'ca',
      'an oversized file',
      (d: string) => {
        writeFileSync(join(d, 'big.pem'), Buffer.alloc(2 << 20, 0x41));
        return { ca: join(d, 'big.pem') };
      },
      /ca .*more than the 1048576 accepted/,
    ],
    [
      'key',
      'a private key readable by others',
      (d: string) => {
        writeFileSync(join(d, 'c.pem'), pem, { mode: 0o644 });
        writeFileSync(join(d, 'k.pem'), pem, { mode: 0o644 });
        return { cert: join(d, 'c.pem'), key: join(d, 'k.pem') };
      },
      /key .*k\.pem .*readable or writable by group or others/,
    ],
    [
      'cert',
      'a file with a second hard link',
      (d: string) => {
        writeFileSync(join(d, 'c.pem'), pem);
        linkSync(join(d, 'c.pem'), join(d, 'c2.pem'));
        writeFileSync(join(d, 'k.pem'), pem, { mode: 0o600 });
        return { cert: join(d, 'c2.pem'), key: join(d, 'k.pem') };
      },
      /cert .*c2\.pem .*has 2 hard links/,
    ],
    ['ca', 'a directory', (d: string) => ({ ca: d }), /ca .*is a directory, not a regular file/],
  ])('discovery.etcd.%s as %s is refused at start, naming the key and the path', async (_key, _what, make, message) => {
    const d = discovery(make(freshDir()));
    cleanups.push(() => d.stop());
    await expect(d.start()).rejects.toThrow(message);
  });
});
