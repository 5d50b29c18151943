/**
 * afsteerd from source under plain Node, for profiling (the single executable takes no Node
 * options): `node --cpu-prof build/run/scale-afsteerd-dev.cjs run --config FILE`, as scale-run.ts
 * does with BENCH_SCALE_PROFILE=DIR. Exits when the daemon stops, so the profile is written.
 */
import { runDaemon } from '../../src/negotiator/main';

const [cmd, flag, config] = process.argv.slice(2);
if (cmd !== 'run' || flag !== '--config' || !config) {
  process.stderr.write('usage: afsteerd-dev run --config FILE\n');
  process.exit(2);
}
void runDaemon(config).then((code) => process.exit(code));
