/** Executable entry of the afsteer CNI plugin. */
import { runCni } from '../cni/main';

runCni(process.env, process.argv.slice(2), (s) => process.stdout.write(s)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`afsteer: fatal: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
