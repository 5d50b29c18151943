// Unit tests of the ADD hand-off: the message schemas (src/control/requests.ts, handoff.ts), afsteerd's
// decision (declineReason) and the whole conversation over a real unix socket between the plugin's
// client (src/cni/handoff-client.ts) and afsteerd's control server with the hand-off handler and a fake
// ADD runner: ready then go then the outcome; declines and silence leave the ADD to the plugin and
// the runner uncalled; a connection lost after the go-ahead is CNI error 11, never a fallback.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PIN_LAYOUT } from '../../../src/bpf/layout-version';
import { HANDOFF_READY_TIMEOUT_MS, handoffTarget, tryHandOff } from '../../../src/cni/handoff-client';
import { asAddResult, cniAddRequest, cniGo, isReady, readyForLayout } from '../../../src/control/handoff-protocol';
import { CniAddRequestSchema, ControlRequestSchema } from '../../../src/control/requests';
import { DEFAULT_CONTROL_SOCKET } from '../../../src/defaults';
import { type CniAddRunner, cniEnvOf, declineReason, ownNamespaces, withCniHandoff } from '../../../src/negotiator/control/handoff-server';
import { serveControl } from '../../../src/negotiator/control/socket-server';

const NS = { net: { dev: 4, ino: 4026531840 }, mnt: { dev: 4, ino: 4026531841 } };
const ADD_ENV = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/run/netns/p', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
const conf = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'afsteer', ...extra });

describe('hand-off messages', () => {
  it('a built request passes the schema; extra keys and wrong types do not', () => {
    const req = cniAddRequest(ADD_ENV, conf(), NS, 12.5, false);
    expect(CniAddRequestSchema.safeParse(req).success).toBe(true);
    expect(ControlRequestSchema.safeParse(req).success).toBe(true);
    expect(ControlRequestSchema.safeParse(cniGo()).success).toBe(true);
    expect(CniAddRequestSchema.safeParse({ ...req, extra: 1 }).success).toBe(false);
    expect(CniAddRequestSchema.safeParse({ ...req, stdin: 5 }).success).toBe(false);
    expect(CniAddRequestSchema.safeParse({ ...req, env: { CNI_COMMAND: 1 } }).success).toBe(false);
    expect(ControlRequestSchema.safeParse({ op: 'cni-go', x: 1 }).success).toBe(false);
  });
  it('ready and result replies are recognised, nothing else', () => {
    expect(isReady({ ok: true, ready: true })).toBe(true);
    expect(isReady({ ok: false, decline: true, error: 'x' })).toBe(false);
    expect(isReady(null)).toBe(false);
    expect(asAddResult({ ok: true, exitCode: 0, stdout: '{}\n', stderr: '' })).toEqual({
      ok: true,
      exitCode: 0,
      stdout: '{}\n',
      stderr: '',
    });
    expect(asAddResult({ ok: true, exitCode: 0.5, stdout: '', stderr: '' })).toBeUndefined();
    expect(asAddResult({ ok: false, error: 'x' })).toBeUndefined();
  });
});

describe('hand-off across pin layouts (a rollout: the plugin and afsteerd of different builds)', () => {
  const L = (version: number, readableFrom: number) => ({ version, readableFrom });
  it('a plugin whose pins layout-1 code may use sends exactly the request of builds from before layouts (their strict schema takes it); a later one states its layout', () => {
    for (const own of [L(1, 1), L(2, 1)]) {
      const req = cniAddRequest(ADD_ENV, conf(), NS, 1, false, own);
      expect(Object.keys(req).sort()).toEqual(['clientMs', 'env', 'ns', 'op', 'stdin', 'trace', 'v']);
    }
    const v3 = cniAddRequest(ADD_ENV, conf(), NS, 1, false, L(3, 2));
    expect(v3.layout).toEqual(L(3, 2));
    expect(CniAddRequestSchema.safeParse(v3).success).toBe(true);
    expect(CniAddRequestSchema.safeParse({ ...v3, layout: { version: 3 } }).success).toBe(false);
  });
  it('afsteerd declines a plugin whose layout cannot share the pins with its own, and runs one that can', () => {
    const own = PIN_LAYOUT.version;
    const req = (layout?: { version: number; readableFrom: number }) =>
      CniAddRequestSchema.parse({ ...cniAddRequest(ADD_ENV, conf(), NS, 1, false), ...(layout ? { layout } : {}) });
    expect(declineReason(req(), NS)).toBeUndefined();
    expect(declineReason(req(L(own, own)), NS)).toBeUndefined();
    // Newer, still readable by afsteerd's layout (an additive change): runs.
    expect(declineReason(req(L(own + 1, own)), NS)).toBeUndefined();
    // Newer, not readable by afsteerd's: declined, naming both layouts.
    expect(declineReason(req(L(own + 1, own + 1)), NS)).toMatch(new RegExp(`pin layout ${own + 1} .* afsteerd's ${own}`));
  });
  it('the plugin lets afsteerd run its ADD only after a ready answer of a layout it can share the pins with (none stated: layout 1)', () => {
    expect(readyForLayout({ ok: true, ready: true }, L(1, 1))).toBe(true);
    expect(readyForLayout({ ok: true, ready: true }, L(2, 1))).toBe(true);
    expect(readyForLayout({ ok: true, ready: true }, L(2, 2))).toBe(false);
    expect(readyForLayout({ ok: true, ready: true, layout: L(3, 3) }, L(2, 1))).toBe(false);
    expect(readyForLayout({ ok: true, ready: true, layout: L(3, 2) }, L(2, 1))).toBe(true);
  });
});

describe('the plugin: which socket, and whether to try', () => {
  it('default socket, a given absolute one, and the config values the wait needs', () => {
    expect(handoffTarget(conf())).toEqual({ socket: DEFAULT_CONTROL_SOCKET, lockTimeoutMs: 60_000, cniVersion: '1.0.0' });
    expect(handoffTarget(conf({ daemonSocket: '/run/x/d.sock', lockTimeoutMs: 5, cniVersion: '0.4.0' }))).toEqual({
      socket: '/run/x/d.sock',
      lockTimeoutMs: 5,
      cniVersion: '0.4.0',
    });
    expect(handoffTarget(conf({ cniVersion: '9.9.9' }))?.cniVersion).toBe('1.1.0');
  });
  it('not tried (the in-process ADD reports or does it): no JSON object, delegated IPAM, a socket path it will not judge', () => {
    for (const s of [
      '',
      'x',
      '[]',
      'null',
      '"s"',
      conf({ ipam: { type: 'host-local' } }),
      conf({ daemonSocket: 'rel.sock' }),
      conf({ daemonSocket: '/run/../x.sock' }),
      conf({ daemonSocket: '/run/./x' }),
      conf({ daemonSocket: '/run/a\nb' }),
      conf({ daemonSocket: 7 }),
      conf({ daemonSocket: '/' + 'a'.repeat(120) }),
      conf({ pad: 'x'.repeat(60 * 1024) }),
    ]) {
      expect(handoffTarget(s), s).toBeUndefined();
    }
  });
});

describe('afsteerd: whether it may run the ADD', () => {
  const req = (over: Partial<ReturnType<typeof cniAddRequest>> = {}) => ({ ...cniAddRequest(ADD_ENV, conf(), NS, 1, false), ...over });
  it('runs a plain ADD from its own namespaces', () => {
    expect(declineReason(req(), NS)).toBeUndefined();
  });
  it('declines another version, another network or mount namespace, another verb, non-JSON stdin, delegated IPAM', () => {
    expect(declineReason(req({ v: 2 }), NS)).toMatch(/version/);
    expect(declineReason(req(), { ...NS, net: { dev: 4, ino: 1 } })).toMatch(/network namespace/);
    expect(declineReason(req(), { ...NS, mnt: { dev: 5, ino: NS.mnt.ino } })).toMatch(/mount namespace/);
    expect(declineReason(req({ env: { ...ADD_ENV, CNI_COMMAND: 'DEL' } }), NS)).toMatch(/only ADD/);
    expect(declineReason(req({ stdin: '{' }), NS)).toMatch(/not JSON/);
    expect(declineReason(req({ stdin: '[1]' }), NS)).toMatch(/not a JSON object/);
    expect(declineReason(req({ stdin: conf({ ipam: {} }) }), NS)).toMatch(/IPAM/);
  });
  it('hands the ADD only the CNI variables', () => {
    expect(cniEnvOf({ ...ADD_ENV, CNI_ARGS: 'A=1', LD_PRELOAD: '/x.so', NODE_OPTIONS: '--require=/x' })).toEqual({
      ...ADD_ENV,
      CNI_ARGS: 'A=1',
    });
  });
});

describe('the conversation over a unix socket', () => {
  let dir: string;
  const servers: Server[] = [];
  const held: Socket[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'afsteer-handoff-'));
  });
  afterAll(() => {
    for (const s of held) s.destroy();
    for (const s of servers) s.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let n = 0;
  const daemon = async (run: CniAddRunner | undefined) => {
    const path = join(dir, `d${n++}.sock`);
    servers.push(
      await serveControl(
        path,
        withCniHandoff(run, () => ({ ok: true, other: true })),
      ),
    );
    return path;
  };
  const env = { ...ADD_ENV, PATH: '/usr/bin', SECRET: 'x' };

  it("ready, go, outcome: the runner gets the CNI env and stdin once and its output is the plugin's", async () => {
    const calls: unknown[] = [];
    const path = await daemon(async (e, stdin, opts) => {
      calls.push({ e, stdin, trace: opts.trace });
      return { exitCode: 1, stdout: '{"code":7}\n', stderr: '{"level":"error"}\n' };
    });
    const stdin = conf({ daemonSocket: path });
    const phases: string[] = [];
    const out = await tryHandOff(env, stdin, (p) => phases.push(p));
    expect(out).toEqual({ exitCode: 1, stdout: '{"code":7}\n', stderr: '{"level":"error"}\n' });
    expect(calls).toEqual([{ e: ADD_ENV, stdin, trace: false }]);
    expect(phases).toEqual(['handoff: request built', 'handoff: connected', 'handoff: ready', 'handoff: answered']);
  });

  it('a daemon without a runner declines: undefined at once', async () => {
    const path = await daemon(undefined);
    const t0 = Date.now();
    expect(await tryHandOff(env, conf({ daemonSocket: path }))).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(HANDOFF_READY_TIMEOUT_MS + 200);
  });

  it('a delegated-IPAM config, a missing socket, a socket that never answers: undefined, runner never called', async () => {
    let called = 0;
    const path = await daemon(async () => {
      called++;
      return { exitCode: 0, stdout: '', stderr: '' };
    });
    expect(await tryHandOff(env, conf({ daemonSocket: path, ipam: { type: 'host-local' } }))).toBeUndefined();
    expect(await tryHandOff(env, conf({ daemonSocket: join(dir, 'missing.sock') }))).toBeUndefined();
    const silent = join(dir, 'silent.sock');
    await new Promise<void>((r) => {
      const s = createServer((c) => {
        c.pause();
        held.push(c);
      });
      servers.push(s);
      s.listen(silent, () => r());
    });
    const t0 = Date.now();
    expect(await tryHandOff(env, conf({ daemonSocket: silent }))).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(HANDOFF_READY_TIMEOUT_MS - 5);
    expect(called).toBe(0);
  });

  it('go-ahead sent, then the connection lost: CNI error 11 (try again), no fallback', async () => {
    const path = join(dir, 'drop.sock');
    await new Promise<void>((r) => {
      const s = createServer((c) => {
        let b = '';
        c.on('data', (d) => {
          b += d;
          if (b.includes('"cni-add"') && !b.includes('"cni-go"')) c.write('{"ok":true,"ready":true}\n');
          if (b.includes('"cni-go"')) c.destroy();
        });
      });
      servers.push(s);
      s.listen(path, () => r());
    });
    const out = await tryHandOff(env, conf({ daemonSocket: path, cniVersion: '0.4.0' }));
    expect(out?.exitCode).toBe(1);
    expect(JSON.parse(out!.stdout)).toMatchObject({ cniVersion: '0.4.0', code: 11 });
  });

  it("other requests reach the daemon's own handler; cni-go without a ready request runs nothing", async () => {
    let called = 0;
    const handler = withCniHandoff(
      async () => {
        called++;
        return { exitCode: 0, stdout: '', stderr: '' };
      },
      () => ({ ok: true, other: true }),
    );
    const conn = { closed: false };
    expect(await handler({ op: 'status' }, conn)).toEqual({ ok: true, other: true });
    expect(await handler({ op: 'cni-go' }, conn)).toMatchObject({ ok: false });
    expect(await handler({ op: 'cni-add', v: 1 }, conn)).toMatchObject({ ok: false, decline: true });
    expect(await handler({ op: 'cni-go' }, conn)).toMatchObject({ ok: false });
    // Ready, but the plugin is gone before its go-ahead is read: nothing runs.
    expect(await handler(cniAddRequest(ADD_ENV, conf(), ownNamespaces(), 1, false) as unknown as Record<string, unknown>, conn)).toEqual({
      ok: true,
      ready: true,
      layout: PIN_LAYOUT,
    });
    expect(await handler({ op: 'cni-go' }, { closed: true, state: (conn as { state?: unknown }).state })).toMatchObject({ ok: false });
    expect(called).toBe(0);
  });
});
