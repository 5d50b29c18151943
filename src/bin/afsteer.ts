/**
 * Executable entry of afsteer (the single executable's main script), kept small so that it starts
 * at once. A CNI ADD is first offered to a running afsteerd (src/cni/handoff-client.ts), whose code is
 * warm; anything else — and an ADD afsteerd does not take — loads the program (src/bin/program.ts,
 * embedded as an asset) with the V8 code cache made at build time, and runs it. Called as
 * `afsteerd` it never hands anything over. AFSTEER_TRACE_PHASES=1: phase timings on stderr.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import * as sea from 'node:sea';
import { Script } from 'node:vm';
import { tryHandOff } from '../cni/handoff-client';

type Program = { main(stdin?: string): void };

let tracing = false;
/** A phase line on stderr (never stdout: it carries the CNI result). */
function trace(phase: string): void {
  if (tracing) process.stderr.write(JSON.stringify({ phase, ms: Math.round(performance.now() * 10) / 10 }) + '\n');
}

/** Compiles the embedded program with its code cache and evaluates it. */
function loadProgram(): Program {
  const source = new TextDecoder().decode(sea.getRawAsset('program.cjs'));
  const script = new Script(source, { filename: 'afsteer-program.cjs', cachedData: Buffer.from(sea.getRawAsset('program.cache')) });
  if (script.cachedDataRejected) trace('program: code cache rejected (compiling)');
  const module = { exports: {} as Program };
  (script.runInThisContext() as (e: unknown, r: NodeJS.Require, m: unknown, f: string, d: string) => void)(
    module.exports,
    require,
    module,
    __filename,
    __dirname,
  );
  trace('program: loaded');
  return module.exports;
}

/** The CNI stdin, read as the program would (an empty or closed stdin is ''); undefined when reading fails (the program reports it). */
function readStdin(): string | undefined {
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EAGAIN' || code === 'EOF' || code === 'EBADF' ? '' : undefined;
  }
}

function start(): void {
  tracing = Boolean(process.env.AFSTEER_TRACE_PHASES);
  trace('main: started');
  if (basename(process.argv0 || process.argv[0] || '') === 'afsteerd' || process.env.CNI_COMMAND !== 'ADD') {
    loadProgram().main();
    return;
  }
  const stdin = readStdin();
  if (stdin === undefined) {
    loadProgram().main();
    return;
  }
  tryHandOff(process.env, stdin, trace).then(
    (out) => {
      if (!out) return loadProgram().main(stdin);
      process.stderr.write(out.stderr);
      process.stdout.write(out.stdout);
      process.exitCode = out.exitCode;
    },
    () => loadProgram().main(stdin),
  );
}

start();
