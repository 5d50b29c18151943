/**
 * afsteerd from source under plain Node, for profiling (the single executable takes no Node
 * options): `node build/run/scale-afsteerd-dev.cjs run --config FILE`, as scale-run.ts runs node A
 * with BENCH_SCALE_PROFILE=DIR. SIGUSR2 starts the CPU profiler (the benchmark sends it when its
 * measurement starts, so start-up is left out); when the daemon stops, the profile is written to
 * $AFSTEERD_DEV_PROFILE_DIR/afsteerd-<pid>.cpuprofile.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { runDaemon } from '../../src/negotiator/main';

const [cmd, flag, config] = process.argv.slice(2);
if (cmd !== 'run' || flag !== '--config' || !config) {
  process.stderr.write('usage: afsteerd-dev run --config FILE\n');
  process.exit(2);
}
const dir = process.env.AFSTEERD_DEV_PROFILE_DIR;
const session = new Session();
let profiling = false;
if (dir) {
  session.connect();
  process.on('SIGUSR2', () => {
    if (profiling) return;
    profiling = true;
    session.post('Profiler.enable', () => session.post('Profiler.start'));
  });
}
void runDaemon(config).then((code) => {
  if (!profiling) process.exit(code);
  session.post('Profiler.stop', (err, r) => {
    if (!err) writeFileSync(join(dir!, `afsteerd-${process.pid}.cpuprofile`), JSON.stringify(r.profile));
    process.exit(code);
  });
});
