/** `afsteerd run --node-name`: a hostile name is refused by the config schema (exit 2, one line), before any key or map is touched. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runAfsteerd } from '../../../src/bin/route';

const dir = mkdtempSync(join(tmpdir(), 'afsteer-nodename-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = join(dir, 'afsteerd.json');
// The key file does not exist: a name that got past the schema would fail later, with another message.
writeFileSync(config, JSON.stringify({ nodeName: 'node-1', keyFile: join(dir, 'missing.key') }));

describe('afsteerd run --node-name', () => {
  it.each([
    ['a path', '../etc/passwd'],
    ['empty', ''],
    ['huge', 'n'.repeat(10_000)],
    ['a control character', 'node\n1'],
    ['a NUL', 'node\u00001'],
  ])('refuses %s with exit 2 naming nodeName', async (_what, name) => {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(await runAfsteerd(['run', '--config', config, '--node-name', name], () => {})).toBe(2);
      expect(String(err.mock.calls.map((c) => c[0]).join(''))).toMatch(/nodeName: must be 1–63 characters/);
    } finally {
      err.mockRestore();
    }
  });
});
