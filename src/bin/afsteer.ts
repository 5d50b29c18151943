/** Executable entry of the afsteer CNI plugin (also the startup-snapshot entry of the single executable). */
import { startupSnapshot } from 'node:v8';
import { preloadVerbs, runCni } from '../cni/main';

function main(): void {
  runCni(process.env, process.argv.slice(2), (s) => process.stdout.write(s)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`afsteer: fatal: ${String(err)}\n`);
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
