/** Files carried inside the single executable (SEA assets), read from the build tree when running from source. */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as sea from 'node:sea';
import { fileURLToPath } from 'node:url';

/** Asset name → path relative to the repository root when running from source. */
const DEV_PATHS: Record<string, string> = {
  'afsteer.bpf.o': 'build/afsteer.bpf.o',
  'afsteer_echo.bpf.o': 'build/afsteer_echo.bpf.o',
  // For `afsteer install`:
  'afsteerd.service': 'conf/afsteerd.service',
  '10-afsteer.conflist': 'conf/10-afsteer.conflist',
};

/** True inside the single executable. */
export function inSea(): boolean {
  return typeof sea.isSea === 'function' && sea.isSea();
}

/** Repository root when running from source (this file is src/native/assets.ts or dist/*.cjs). */
function repoRoot(): string {
  if (process.env.AFSTEER_REPO_ROOT) return process.env.AFSTEER_REPO_ROOT;
  const here = typeof __filename !== 'undefined' ? __filename : fileURLToPath(import.meta.url);
  return here.includes('/src/') ? resolve(dirname(here), '..', '..') : resolve(dirname(here), '..');
}

/** Contents of an asset: from the executable when bundled, else from the build tree. */
export function readAsset(name: string): Buffer {
  if (inSea()) return Buffer.from(sea.getAsset(name));
  const rel = DEV_PATHS[name];
  if (!rel) throw new Error(`unknown asset ${name}`);
  const path = join(repoRoot(), rel);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${path}; run npm run build:bpf`, { cause: err });
  }
}
