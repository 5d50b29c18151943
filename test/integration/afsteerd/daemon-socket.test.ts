/**
 * The plugin's notification of afsteerd (`daemonSocket`), through the real chain via libcni: a
 * listening daemon gets one line per ADD and DEL; a socket path that is a FIFO, a regular file, a
 * directory, missing, or a daemon that accepts and never reads changes nothing: ADD and DEL
 * succeed without waiting on it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announceSkip, IS_ROOT, World } from '../../support/world';

announceSkip('daemonSocket notification');

describe.skipIf(!IS_ROOT)('daemonSocket notification', () => {
  let w: World;
  const servers: Server[] = [];
  const held: Socket[] = [];
  beforeAll(() => {
    w = new World();
  });
  afterAll(() => {
    for (const s of held) s.destroy();
    for (const s of servers) s.close();
    w?.cleanup();
  });
  const listen = (path: string, onConn: (c: Socket) => void) =>
    new Promise<Server>((resolve) => {
      const s = createServer(onConn);
      servers.push(s);
      s.listen(path, () => resolve(s));
    });

  it('a listening afsteerd gets {"op":"endpoint"} for ADD and for DEL', async () => {
    const sock = join(w.dir, 'd.sock');
    const lines: Record<string, unknown>[] = [];
    await listen(sock, (c) => {
      let b = '';
      c.on('data', (d) => (b += d));
      c.on('end', () =>
        lines.push(
          ...b
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>),
        ),
      );
    });
    const list = w.conflist('notify', { afsteer: { daemonSocket: sock } });
    const ns = w.netns('n1');
    const add = await w.driver('add', list, ns, 'ctr-n1');
    expect(add.code, add.stderr).toBe(0);
    const del = await w.driver('del', list, ns, 'ctr-n1');
    expect(del.code, del.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    // The ADD was first offered to the daemon (src/cni/handoff-client.ts); this one never answers, so the plugin did it itself.
    expect(lines.filter((l) => l.op === 'cni-add').map((l) => (l.env as Record<string, string>).CNI_CONTAINERID)).toEqual(['ctr-n1']);
    expect(lines.filter((l) => l.op !== 'cni-add')).toEqual([
      { op: 'endpoint', event: 'add', containerId: 'ctr-n1', ifname: 'eth0' },
      { op: 'endpoint', event: 'del', containerId: 'ctr-n1', ifname: 'eth0' },
    ]);
  });

  it('a FIFO, a file, a directory, a missing path or a daemon that never reads: ADD and DEL succeed without waiting', async () => {
    const dir = join(w.dir, 'hostile');
    mkdirSync(dir);
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    const stuck = join(dir, 'stuck.sock');
    // Accepts and never reads or answers; and a full backlog afterwards.
    const srv = await listen(stuck, (c) => {
      c.pause();
      held.push(c);
    });
    void srv;
    let i = 0;
    for (const target of [fifo, file, dir, join(dir, 'missing.sock'), stuck]) {
      const list = w.conflist(`h${i}`, { afsteer: { daemonSocket: target } });
      const ns = w.netns(`h${i}`);
      const t0 = Date.now();
      const add = await w.driver('add', list, ns, `ctr-h${i}`);
      expect(add.code, `${target}: ${add.stderr}`).toBe(0);
      const del = await w.driver('del', list, ns, `ctr-h${i}`);
      expect(del.code, `${target}: ${del.stderr}`).toBe(0);
      expect(Date.now() - t0, target).toBeLessThan(5000);
      i++;
    }
  }, 60_000);
});
