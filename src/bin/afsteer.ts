/**
 * Executable entry of afsteer (also the startup-snapshot entry of the single executable). Called
 * as `afsteerd` (a link to the same file) it is the per-node negotiator; otherwise the CNI plugin
 * and its operator commands. The routing of names and subcommands is ./route.ts.
 */
import { basename } from 'node:path';
import { startupSnapshot } from 'node:v8';
import { preloadForSnapshot, runAfsteer, runAfsteerd } from './route';

function main(): void {
  const name = basename(process.argv0 || process.argv[0] || '');
  const run = name === 'afsteerd'
    ? runAfsteerd(process.argv.slice(2), (s) => process.stdout.write(s))
    : runAfsteer(process.env, process.argv.slice(2), (s) => process.stdout.write(s));
  run.then(
    (code) => {
      process.exitCode = code;
      if (name === 'afsteerd') process.exit(code);
    },
    (err: unknown) => {
      process.stderr.write(`${name || 'afsteer'}: fatal: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

if (startupSnapshot?.isBuildingSnapshot()) {
  // Building the executable: evaluate every module now (zod schemas, netlink's JS, ...) so the
  // snapshot holds them initialised; native addons stay unloaded until first use at run time.
  void preloadForSnapshot();
  startupSnapshot.setDeserializeMainFunction(main);
} else {
  main();
}
