/**
 * The whole program (CNI plugin, operator commands, afsteerd), as the single executable loads it
 * from its embedded code (src/bin/afsteer.ts): `main` runs it for this process; `preload`
 * evaluates every module of the plugin and runs its pure-JS hot paths once, at build time, so
 * that the V8 code cache made then holds their compiled code. Called as `afsteerd` (a link to
 * the same file) it is the per-node negotiator; otherwise the CNI plugin and its operator
 * commands. The routing of names and subcommands is ./route.ts.
 */
import { basename } from 'node:path';
import { preloadForCodeCache, runAfsteer, runAfsteerd } from './route';

/** Runs the executable for this process (exit code through process.exitCode, afsteerd: exit); stdin: the CNI stdin when already read. */
export function main(stdin?: string): void {
  const name = basename(process.argv0 || process.argv[0] || '');
  const run =
    name === 'afsteerd'
      ? runAfsteerd(process.argv.slice(2), (s) => process.stdout.write(s))
      : runAfsteer(process.env, process.argv.slice(2), (s) => process.stdout.write(s), stdin);
  run.then(
    (code) => {
      process.exitCode = code;
      // afsteerd exits outright (its run leaves handles), but only once stdout is flushed: a
      // piped `status --json` of a large node is more than a pipe holds.
      if (name === 'afsteerd') process.stdout.write('', () => process.exit(code));
    },
    (err: unknown) => {
      process.stderr.write(`${name || 'afsteer'}: fatal: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}

/** Evaluates the plugin's modules and warms its hot paths (no native code, no kernel state): build time only. */
export const preload = preloadForCodeCache;
