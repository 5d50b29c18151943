// Build step: compiles the program bundle as the executable will (same wrapper, same file name),
// runs its preload (every plugin module evaluated, hot paths warmed: no native code, no kernel
// state), then writes V8's code cache, which now holds the functions compiled so far.
// Must run on the Node binary the executable is made from. Usage: node make-code-cache.cjs IN OUT
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { Script } = require('node:vm');
const [input, output] = process.argv.slice(2);
const script = new Script(readFileSync(input, 'utf8'), { filename: 'afsteer-program.cjs' });
const mod = { exports: {} };
script.runInThisContext()(mod.exports, require, mod, input, require('node:path').dirname(input));
Promise.resolve(mod.exports.preload()).then(() => {
  writeFileSync(output, script.createCachedData());
  process.exit(0);
});
