/**
 * Executable entry of afsteer (also the startup-snapshot entry of the single executable). Called
 * as `afsteerd` (a link to the same file) it is the per-node negotiator; otherwise the CNI plugin
 * and its operator commands. The negotiator's modules load only then, so the plugin's start-up
 * path does not carry them.
 */
import { basename } from 'node:path';
import { startupSnapshot } from 'node:v8';
import { preloadVerbs, runCni } from '../cni/main';

function main(): void {
  const name = basename(process.argv0 || process.argv[0] || '');
  const run = name === 'afsteerd'
    ? import('../cli/afsteerd').then((m) => m.runAfsteerd(process.argv.slice(2), (s) => process.stdout.write(s)))
    : process.argv[2] === 'install' && !process.env.CNI_COMMAND ? import('../install/install').then((m) => m.runInstall(process.argv.slice(3), (s) => process.stdout.write(s)))
    : runCni(process.env, process.argv.slice(2), (s) => process.stdout.write(s));
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
  void preloadVerbs();
  startupSnapshot.setDeserializeMainFunction(main);
} else {
  main();
}
