/** Bad input against the pure validators and the unprivileged file checks (the integration suite drives the executable). */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shouldMountBpffs } from '../../../src/bpf/bpffs';
import { printable } from '../../../src/cli/text';
import { ownedElsewhere, unprovenAddresses } from '../../../src/cni/claims';
import { parseNetConf } from '../../../src/cni/config';
import { idProblem, MAX_CONTAINER_ID, readEnv, readVerb } from '../../../src/cni/env';
import { staleAttachments } from '../../../src/cni/gc';
import { logFileProblem, normalizePath, pathProblem } from '../../../src/cni/path-keys';
import { familiesFor, parseResult } from '../../../src/cni/result';
import { cidrProblem, familyOf, isCidr, parseCidr } from '../../../src/net/ip';
import { statePath } from '../../../src/node/attachments';
import { isHostNetns } from '../../../src/node/recorded-netns';
import { isWithin } from '../../../src/util/paths';
import { dirProblem, ensureTrustedDir, openOwnFile, READ_FLAGS, readOwnFile, UnsafePathError } from '../../../src/util/safe-fs';

const base = { cniVersion: '1.0.0', name: 'n', type: 'afsteer' };
const env = { CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };
const code = (fn: () => unknown): number | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code;
  }
};

describe('config path keys (pinDir, stateDir, logFile)', () => {
  it.each([
    ['relative', 'var/lib/afsteer'],
    ['NUL byte', '/var/lib/af\u0000steer'],
    ['control character', '/var/lib/af\u001bsteer'],
    ['traversal', '/sys/fs/bpf/../../../tmp/x/pd'],
    ['dot component', '/sys/fs/bpf/./afsteer'],
    ['too long', '/' + 'a'.repeat(5000)],
  ])('refuses a %s path with code 7 naming the key', (_what, p) => {
    for (const key of ['pinDir', 'stateDir', 'logFile']) {
      expect(pathProblem(p)).toBeDefined();
      expect(() => parseNetConf(JSON.stringify({ ...base, [key]: p }))).toThrow(
        expect.objectContaining({ code: 7, message: expect.stringContaining(key) }),
      );
    }
  });

  it('normalises repeated and trailing slashes', () => {
    expect(normalizePath('/sys/fs//bpf/afsteer/')).toBe('/sys/fs/bpf/afsteer');
    expect(parseNetConf(JSON.stringify({ ...base, pinDir: '/sys/fs/bpf//x/', stateDir: '/var/lib/afsteer/' }))).toMatchObject({
      pinDir: '/sys/fs/bpf/x',
      stateDir: '/var/lib/afsteer',
    });
    expect(isWithin('/sys/fs/bpfx', '/sys/fs/bpf')).toBe(false);
  });

  it('logFile must be under /var/log or the stateDir', () => {
    expect(logFileProblem('/var/log/afsteer.log', '/var/lib/afsteer')).toBeUndefined();
    expect(logFileProblem('/var/lib/afsteer/log.json', '/var/lib/afsteer')).toBeUndefined();
    for (const f of ['/etc/passwd', '/var/logx', '/var/log', '/tmp/afsteer.log', '/dev/tty'])
      expect(logFileProblem(f, '/var/lib/afsteer')).toBeDefined();
    expect(() => parseNetConf(JSON.stringify({ ...base, logFile: '/etc/passwd' }))).toThrow(
      expect.objectContaining({ code: 7, message: expect.stringMatching(/logFile must be under \/var\/log/) }),
    );
  });

  it('a bpffs is mounted only on /sys/fs/bpf itself, only when it is not one, only for a pinDir under it', () => {
    expect(shouldMountBpffs('/sys/fs/bpf/afsteer', false, true)).toBe(true);
    expect(shouldMountBpffs('/sys/fs/bpf/afsteer', true, true)).toBe(false);
    expect(shouldMountBpffs('/tmp/x/pd', false, true)).toBe(false);
    expect(shouldMountBpffs('/sys/fs/bpfx', false, true)).toBe(false);
    expect(shouldMountBpffs('/sys/fs/bpf/afsteer', false, false)).toBe(false);
  });
});

describe('type errors name the key and the allowed values', () => {
  it.each([
    [{ mtu: 'big' }, /mtu must be an integer between 1280 and 65535 \(got "big"\)/],
    [{ mtu: 3.5 }, /mtu must be an integer between 1280 and 65535 \(got 3.5\)/],
    [{ mtu: 100 }, /mtu must be an integer between 1280 and 65535 \(got 100\)/],
    [{ lockTimeoutMs: -1 }, /lockTimeoutMs must be a positive integer/],
    [{ logLevel: 'loud' }, /logLevel must be one of "debug", "info", "warn", "error"/],
    [{ allowSingleStack: 'yes' }, /allowSingleStack must be true or false/],
    [{ pinDir: 42 }, /pinDir must be an absolute path \(got 42\)/],
    [{ ipam: { type: '../x' } }, /ipam\.type/],
  ])('%j', (extra, msg) => {
    expect(() => parseNetConf(JSON.stringify({ ...base, ...extra }))).toThrow(
      expect.objectContaining({ code: 7, message: expect.stringMatching(msg) }),
    );
  });

  it('a __proto__ key in the config changes nothing', () => {
    const c = parseNetConf(`{"cniVersion":"1.0.0","name":"n","type":"afsteer","__proto__":{"pinDir":"/tmp/evil","mtu":1}}`);
    expect(c.pinDir).toBe('/sys/fs/bpf/afsteer');
    expect(({} as Record<string, unknown>).pinDir).toBeUndefined();
  });
});

describe('environment', () => {
  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf'])('CNI_COMMAND=%s is code 4', (c) => {
    expect(code(() => readVerb({ CNI_COMMAND: c }))).toBe(4);
  });

  it('a container id longer than the state file name allows is code 4 for ADD; DEL is told nothing can exist', () => {
    const long = 'a'.repeat(300);
    expect(code(() => readEnv({ ...env, CNI_CONTAINERID: long }, 'ADD'))).toBe(4);
    expect(code(() => readEnv({ ...env, CNI_CONTAINERID: long }, 'CHECK'))).toBe(4);
    expect(readEnv({ ...env, CNI_CONTAINERID: long }, 'DEL').neverAdded).toMatch(/at most 200/);
    expect(readEnv({ ...env, CNI_CONTAINERID: '../etc' }, 'DEL').neverAdded).toBeDefined();
    expect(readEnv(env, 'DEL').neverAdded).toBeUndefined();
    expect(idProblem('a'.repeat(MAX_CONTAINER_ID), 'eth0')).toBeUndefined();
  });

  it('the longest accepted id and ifname still give state (and temporary) file names within NAME_MAX', () => {
    const name = basename(statePath('/s', 'a'.repeat(MAX_CONTAINER_ID), 'x'.repeat(15)));
    expect(`.${name}.${'9'.repeat(10)}.tmp`.length).toBeLessThanOrEqual(255);
  });

  it('interface names with control characters are code 4', () => {
    expect(idProblem('abc', 'eth\u001b0')).toBeDefined();
    expect(code(() => readEnv({ ...env, CNI_IFNAME: 'a\tb' }, 'ADD'))).toBe(4);
  });
});

describe('addresses', () => {
  it.each(['fe80::1%eth0/64', '10.0.0.1/08', '10.0.0.1/33', 'fd00::1/129', '010.0.0.1/8', '10.0.0.1', '10.0.0.1/ 8', ' 10.0.0.1/8'])(
    'refuses CIDR %s',
    (c) => {
      expect(cidrProblem(c)).toBeDefined();
      expect(isCidr(c)).toBe(false);
      expect(() => parseCidr(c)).toThrow();
    },
  );

  it('accepts plain CIDRs and canonicalises them', () => {
    expect(parseCidr('fd00:0::5/64')).toEqual({ family: 6, address: 'fd00::5', prefix: 64 });
    expect(parseCidr('10.0.0.1/0')).toEqual({ family: 4, address: '10.0.0.1', prefix: 0 });
  });

  it('zone-scoped addresses are not addresses', () => {
    expect(familyOf('fe80::1%eth0')).toBeUndefined();
    expect(familyOf('fe80::1')).toBe(6);
  });

  it('a prevResult with a zone-scoped address is refused', () => {
    expect(() => parseResult({ ips: [{ address: 'fe80::1%eth0/64' }] }, 'prevResult')).toThrow(/not a valid CNI result/);
    expect(() => parseResult({ ips: [{ address: '10.0.0.2/24', gateway: 'fe80::1%eth0' }] }, 'prevResult')).toThrow();
  });
});

describe('prevResult claims', () => {
  it("ips on host-side interfaces are not the pod's", () => {
    const r = parseResult(
      {
        interfaces: [{ name: 'br0' }, { name: 'veth1' }],
        ips: [
          { address: '10.0.0.1/24', interface: 0 },
          { address: 'fd00::1/64', interface: 1 },
        ],
      },
      'p',
    );
    expect(familiesFor(r, undefined).size).toBe(0);
    const withPod = parseResult(
      {
        interfaces: [{ name: 'br0' }, { name: 'eth0', sandbox: '/x' }],
        ips: [
          { address: '10.0.0.1/24', interface: 0 },
          { address: '10.0.0.2/24', interface: 1 },
        ],
      },
      'p',
    );
    expect([...familiesFor(withPod, 1)]).toEqual([4]);
    expect([...familiesFor(parseResult({ ips: [{ address: '10.0.0.2/24' }] }, 'p'), undefined)]).toEqual([4]);
  });

  it('an address the pod interface does not have is unproven', () => {
    const present = [parseCidr('10.0.0.2/24'), parseCidr('fd00::2/64')];
    expect(unprovenAddresses([parseCidr('10.0.0.2/24'), parseCidr('fd00:0::2/64')], present)).toEqual([]);
    expect(unprovenAddresses([parseCidr('10.0.0.3/24')], present)).toEqual([parseCidr('10.0.0.3/24')]);
  });

  it('an address another live endpoint owns is refused; a stale owner or this veth is not another', () => {
    const owners = new Map([
      ['10.0.0.3', 7],
      ['10.0.0.4', 9],
      ['10.0.0.5', 5],
    ]);
    const taken = ownedElsewhere(['10.0.0.3', '10.0.0.4', '10.0.0.5', '10.0.0.6'], (a) => owners.get(a), 5, new Set([5, 7]));
    expect(taken).toEqual([{ address: '10.0.0.3', ifindex: 7 }]);
  });

  it('the host namespace is recognised by identity', () => {
    expect(
      isHostNetns({ dev: 4, ino: 10 }, [
        { dev: 4, ino: 11 },
        { dev: 4, ino: 10 },
      ]),
    ).toBe(true);
    expect(isHostNetns({ dev: 4, ino: 12 }, [{ dev: 4, ino: 11 }])).toBe(false);
  });
});

describe('GC', () => {
  const states = [
    { network: 'n', containerId: 'a', ifname: 'eth0' },
    { network: 'n', containerId: 'b', ifname: 'eth0' },
    { network: 'other', containerId: 'c', ifname: 'eth0' },
  ];
  it('without a valid-attachments list removes nothing; an explicit empty list removes every attachment of the network', () => {
    expect(staleAttachments(states, 'n', undefined)).toEqual([]);
    expect(staleAttachments(states, 'n', []).map((s) => s.containerId)).toEqual(['a', 'b']);
    expect(staleAttachments(states, 'n', [{ containerID: 'a', ifname: 'eth0' }]).map((s) => s.containerId)).toEqual(['b']);
  });
});

describe('terminal output', () => {
  it('escapes control characters in names', () => {
    expect(printable('pod\u001b[2J\u0007x')).toBe('pod\\x1b[2J\\x07x');
    expect(printable('a\\b\u009bc')).toBe('a\\\\b\\x9bc');
    expect(printable('plain-name_1.2')).toBe('plain-name_1.2');
  });
});

describe('own files and directories (safe-fs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'afsteer-safefs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a symlink, a FIFO and a directory where a regular file must be, without blocking', () => {
    const victim = join(dir, 'victim');
    writeFileSync(victim, 'keep\n');
    symlinkSync(victim, join(dir, 'link'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    mkdirSync(join(dir, 'sub'));
    expect(() => openOwnFile(join(dir, 'link'), READ_FLAGS)).toThrow(/is a symbolic link/);
    expect(() => readOwnFile(join(dir, 'fifo'))).toThrow(/is a FIFO, not a regular file/);
    expect(() => readOwnFile(join(dir, 'sub'))).toThrow(UnsafePathError);
    expect(readOwnFile(victim)).toBe('keep\n');
    expect(readFileSync(victim, 'utf8')).toBe('keep\n');
  });

  it('refuses a directory chain through a symlink, or writable by others', () => {
    const real = join(dir, 'real');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, join(dir, 'state-link'));
    expect(() => ensureTrustedDir(join(dir, 'state-link'))).toThrow(/is a symbolic link/);
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(() => ensureTrustedDir(join(open, 'state'))).toThrow(/writable by group or others/);
    expect(existsSync(join(open, 'state'))).toBe(false);
    writeFileSync(join(dir, 'afile'), '');
    expect(() => ensureTrustedDir(join(dir, 'afile'))).toThrow(/is not a directory/);
    ensureTrustedDir(join(real, 'a', 'b'));
    expect(existsSync(join(real, 'a', 'b'))).toBe(true);
  });

  it('dirProblem: sticky world-writable directories (/tmp) are fine, others are not', () => {
    const owner = () => true;
    expect(dirProblem({ uid: 0, mode: 0o41777, isDirectory: true }, owner)).toBeUndefined();
    expect(dirProblem({ uid: 0, mode: 0o40777, isDirectory: true }, owner)).toMatch(/writable/);
    expect(dirProblem({ uid: 1000, mode: 0o40755, isDirectory: true }, (u) => u === 0)).toMatch(/uid 1000/);
  });
});
