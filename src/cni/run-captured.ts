/**
 * A CNI invocation run inside afsteerd (the plugin's ADD handed over): the same runCni, with
 * stdout captured and the log lines it would have written to stderr collected (its logFile, if
 * configured, is written as in-process), in a log scope of its own so the daemon's logging is
 * untouched.
 */
import { withLogScope } from '../util/log';
import { runCni } from './plugin';

/** Runs runCni for env and stdin; resolves with its exit code and what it printed on stdout and stderr. */
export async function runCniCaptured(
  env: Record<string, string>,
  stdin: string,
  opts: { clientMs: number; trace: boolean },
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const exitCode = await withLogScope({ collect: (l) => (stderr += l), offsetMs: opts.clientMs, trace: opts.trace }, () =>
    runCni(
      env,
      (s) => {
        stdout += s;
      },
      stdin,
    ),
  );
  return { exitCode, stdout, stderr };
}
