/* Loads a native addon carried inside the single executable: extracted once to a root-owned,
 * content-addressed directory (never a world-writable one), then dlopen'ed. Build-time only shim. */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const sea = require('node:sea');

/* eslint-disable no-undef */
const HASHES = AFSTEER_ADDON_HASHES;

function baseDir() {
  const uid = process.getuid ? process.getuid() : 0;
  return uid === 0 ? '/var/lib/afsteer/native' : path.join(os.homedir(), '.cache', 'afsteer', 'native');
}

function assertPrivate(p) {
  const st = fs.lstatSync(p);
  const uid = process.getuid ? process.getuid() : 0;
  if (st.isSymbolicLink() || st.uid !== uid || (st.mode & 0o022) !== 0) {
    throw new Error(`refusing to load native code from ${p}: must be owned by uid ${uid} and not group/world-writable`);
  }
}

/** Returns the exports of the embedded addon `name` (e.g. "koffi.node"). */
function loadEmbeddedAddon(name) {
  const hash = HASHES[name];
  if (!hash) throw new Error(`no embedded addon ${name}`);
  const dir = path.join(baseDir(), hash);
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, Buffer.from(sea.getAsset(name)), { mode: 0o500 });
    fs.renameSync(tmp, file);
  }
  assertPrivate(dir);
  assertPrivate(file);
  const mod = { exports: {} };
  process.dlopen(mod, file);
  return mod.exports;
}

module.exports = { loadEmbeddedAddon };
