/**
 * The executable's output through a pipe: `afsteerd status --json` of a node whose answer is
 * larger than a pipe holds (a node with 1,000 peers answers ~300 KB) reaches the reader whole,
 * with multi-byte characters split across socket chunks intact. The control socket here is a
 * stand-in that answers one large status line (a real afsteerd at that size is the scale
 * benchmark's); the executable is the real dist/afsteerd.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AFSTEERD_BIN } from '../../support/sim-daemons';

describe('afsteerd output through a pipe', () => {
  const dir = mkdtempSync(join(tmpdir(), 'afsteer-cli-'));
  const sock = join(dir, 'd.sock');
  let server: Server;
  const peers = Array.from({ length: 4000 }, (_, i) => ({ node: `node-${i}-é✓`, lastHeardMsAgo: i, endpoints: 10, families: {} }));
  const answer = { ok: true, node: 'big', peers, pairs: [], switches: [] };
  beforeAll(async () => {
    server = createServer((c) => {
      c.once('data', () => {
        // Written in small chunks so that multi-byte characters are split between them.
        const b = Buffer.from(JSON.stringify(answer) + '\n');
        for (let i = 0; i < b.length; i += 1001) c.write(b.subarray(i, i + 1001));
        c.end();
      });
    });
    await new Promise<void>((r) => server.listen(sock, r));
  });
  afterAll(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('status --json larger than a pipe (64 KiB) is read whole', async () => {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        AFSTEERD_BIN,
        ['status', '--json', '--socket', sock],
        { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 20_000 },
        (err, stdout) => (err ? reject(err) : resolve(stdout)),
      ),
    );
    expect(out.length).toBeGreaterThan(256 * 1024);
    const got = JSON.parse(out);
    expect(got.peers).toHaveLength(peers.length);
    expect(got.peers.at(-1).node).toBe(`node-${peers.length - 1}-é✓`);
  });
});
