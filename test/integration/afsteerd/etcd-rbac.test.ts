/**
 * etcd as a least-privilege store: a real etcd (Debian's etcd-server) in the middle namespace
 * with authentication on, set up with etcdctl (Debian's etcd-client) as an operator would: a root
 * user, and per node a user and a role that may write only its own key (read: the prefix).
 * Three afsteerd with identities log in with their own password files and converge over etcd
 * alone; their records are identity records (signed by the node's key). Node C's credentials
 * cannot write node B's record (etcd itself says permission denied), nor can anyone without a
 * login; and a revocation list the authority puts into etcd drops node C on A and B within one
 * announcement refresh.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listRemotes } from '../../../src/bpf/steering';
import { ETCD_BIN, EtcdServer } from '../../support/etcd';
import { identityCmd, issueSimIdentities } from '../../support/identities';
import { execFileP } from '../../support/process';
import { type SimDaemon, type SimPod, TwoNodes, waitFor } from '../../support/two-nodes';
import { announceSkip, IS_ROOT } from '../../support/world';

const ETCDCTL = ['/usr/bin/etcdctl', '/usr/local/bin/etcdctl'].find((p) => {
  try {
    readFileSync(p);
    return true;
  } catch {
    return false;
  }
});
announceSkip('afsteerd with etcd RBAC');
if (IS_ROOT && (!ETCD_BIN || !ETCDCTL))
  console.warn(
    'SKIPPED afsteerd with etcd RBAC: no etcd or etcdctl (apt-get install etcd-server etcd-client; scripts/setup.sh installs them)',
  );

const PREFIX = '/afsteer/nodes/';

describe.skipIf(!IS_ROOT || !ETCD_BIN || !ETCDCTL)('afsteerd with etcd RBAC: one user and role per node', () => {
  let t: TwoNodes;
  let etcd: EtcdServer;
  let pb: SimPod, pc: SimPod;
  const d: Record<string, SimDaemon> = {};
  let ca: string;
  let dirs: Record<string, string>;
  const pw = (name: string) => `pw-${name}-${t.id}`;

  /** etcdctl inside the middle namespace (where etcd listens); rejects with etcd's message on failure. */
  const etcdctl = async (user: string | undefined, ...args: string[]): Promise<string> => {
    const auth = user ? ['--user', `${user}:${pw(user)}`] : [];
    const { stdout } = await execFileP('nsenter', [`--net=${t.midPath}`, ETCDCTL!, '--endpoints', etcd.url, ...auth, ...args], {
      encoding: 'utf8',
      timeout: 10_000,
      env: { ETCDCTL_API: '3', PATH: process.env.PATH },
    });
    return String(stdout);
  };

  beforeAll(async () => {
    t = new TwoNodes('bridge', 3);
    await t.up();
    etcd = new EtcdServer({ nsPath: t.midPath, host: '192.168.1.1' });
    await etcd.start();
    await t.addPod(t.a, 'a0');
    pb = await t.addPod(t.b, 'b0');
    pc = await t.addPod(t.c!, 'c0');
    ({ ca, dirs } = await issueSimIdentities(t));
    // The operator's set-up: root, then per node a user and a role for its own key only.
    await etcdctl(undefined, 'user', 'add', 'root', '--new-user-password', pw('root'));
    await etcdctl(undefined, 'user', 'grant-role', 'root', 'root');
    for (const n of t.nodes) {
      const name = `node-${n.name}`;
      await etcdctl(undefined, 'user', 'add', name, '--new-user-password', pw(name));
      await etcdctl(undefined, 'role', 'add', name);
      await etcdctl(undefined, 'role', 'grant-permission', name, 'readwrite', PREFIX + name);
      await etcdctl(undefined, 'role', 'grant-permission', name, 'read', PREFIX, '--prefix=true');
      await etcdctl(undefined, 'user', 'grant-role', name, name);
    }
    await etcdctl(undefined, 'auth', 'enable');
    for (const n of t.nodes) {
      const name = `node-${n.name}`;
      const passwordFile = join(t.dir, `etcd-${name}.password`);
      writeFileSync(passwordFile, `${pw(name)}\n`, { mode: 0o600 });
      const discovery = { multicast: false, static: [], etcd: { endpoints: [etcd.url], leaseTtlS: 3, passwordFile } };
      d[n.name] = await t.startDaemon(n, { keyFile: undefined, identity: dirs[n.name], discovery });
    }
  }, 120_000);
  afterAll(async () => {
    t?.cleanup();
    await etcd?.destroy();
  });

  it('each node logs in as itself and the three converge over etcd alone; records are signed identity records', async () => {
    await waitFor(
      async () => {
        for (const x of Object.values(d)) if ((await t.status(x)).peers.length !== 2) return false;
        return true;
      },
      20_000,
      'three nodes converged over etcd with RBAC',
    );
    expect((await t.status(d.a!)).etcd).toMatchObject({ reachable: true, targets: 2 });
    const value = (await etcdctl('root', 'get', PREFIX + 'node-b', '--print-value-only')).trim();
    const b = Buffer.from(value, 'base64');
    expect(b.subarray(0, 3)).toEqual(Buffer.from([0x41, 0x52, 2]));
  });

  it("node C's credentials cannot write node B's record (etcd refuses), nor can an anonymous client", async () => {
    await expect(etcdctl('node-c', 'put', PREFIX + 'node-b', 'forged')).rejects.toThrow(/permission denied/);
    await expect(etcdctl(undefined, 'put', PREFIX + 'node-b', 'forged')).rejects.toThrow(
      /user name is empty|permission denied|authentication/i,
    );
    await expect(etcdctl('node-c', 'put', `${PREFIX}.revocations`, 'x')).rejects.toThrow(/permission denied/);
    // Its own key it may write (what it writes there is judged by the readers: a forgery is refused).
    await etcdctl('node-c', 'put', PREFIX + 'node-c', 'forged');
    await waitFor(async () => Object.keys((await t.status(d.a!)).etcd.refused).length > 0, 5000, "A refusing C's forged record");
    expect((await etcdctl('root', 'get', PREFIX + 'node-b', '--print-value-only')).trim()).not.toBe('forged');
  });

  it('a revocation list put into etcd by the authority drops node C on A and B within one announcement refresh', async () => {
    const file = join(t.dir, 'revoked.list');
    await identityCmd(['revoke', '--authority', ca, '--node', 'node-c', '--out', file]);
    await etcdctl('root', 'put', '--', `${PREFIX}.revocations`, readFileSync(file, 'utf8'));
    await waitFor(
      () => !listRemotes(t.a.pinDir).some((r) => r.ipv6 === pc.ipv6) && !listRemotes(t.b.pinDir).some((r) => r.ipv6 === pc.ipv6),
      2500,
      "C's pod unregistered on A and B",
    );
    expect(listRemotes(t.a.pinDir).some((r) => r.ipv6 === pb.ipv6)).toBe(true);
    for (const x of [d.a!, d.b!]) expect((await t.status(x)).peers.map((p: any) => p.node)).toEqual([x === d.a ? 'node-b' : 'node-a']);
  });
});
