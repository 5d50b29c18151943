/**
 * What the executable does with its name and arguments: called `afsteerd`, the negotiator's
 * commands (run | status | prefer); otherwise `afsteer --version`, the operator commands (show, steer, identity)
 * or, with CNI_COMMAND, the CNI plugin. Each command's modules load only when it runs, so the
 * plugin's start-up path does not carry the negotiator's.
 */
import { parseArgs } from 'node:util';
import { printable } from '../cli/text';
import { preloadVerbs, runCni } from '../cni/plugin';
import { SUPPORTED_VERSIONS } from '../cni/version';
import { DEFAULT_CONTROL_SOCKET } from '../defaults';
import type { CniAddRunner } from '../negotiator/control/handoff-server';

/** afsteer's release version (set by the build). */
export const AFSTEER_VERSION = process.env.AFSTEER_BUILD_VERSION ?? '0.1.0-dev';

const AFSTEERD_USAGE = `usage:
  afsteerd run --config FILE [--node-name NAME]   (NAME overrides the config's nodeName)
  afsteerd status [--json] [--socket PATH]   (default socket ${DEFAULT_CONTROL_SOCKET})
  afsteerd prefer PEER-NODE|CNF-ID ipv4|ipv6|auto [--json] [--socket PATH]   (pin a family; auto: negotiate again)
`;

/**
 * Runs `afsteer ARGS` (CNI when CNI_COMMAND is set); resolves with the exit code. Output goes
 * through write. stdin: the CNI request's stdin when the main script already read it.
 */
export async function runAfsteer(env: NodeJS.ProcessEnv, argv: string[], write: (s: string) => void, stdin?: string): Promise<number> {
  if (!env.CNI_COMMAND && argv.some((a) => a === '--version' || a === '-v' || a === 'version')) {
    write(`CNI afsteer plugin ${AFSTEER_VERSION}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`);
    return 0;
  }
  if (!env.CNI_COMMAND && argv[0] === 'show') {
    // Operator commands (not CNI verbs): loaded lazily like the verbs.
    return (await import('../cli/show')).runShow(argv.slice(1), write);
  }
  if (!env.CNI_COMMAND && argv[0] === 'steer') {
    return (await import('../cli/steer')).runSteer(argv.slice(1), write);
  }
  if (!env.CNI_COMMAND && argv[0] === 'identity') {
    return (await import('../cli/identity')).runIdentity(argv.slice(1), write);
  }
  if (!env.CNI_COMMAND && argv[0] === 'install') {
    return (await import('../install/install')).runInstall(argv.slice(1), write);
  }
  return runCni(env, write, stdin);
}

/** Runs `afsteerd ARGS`; resolves with the exit code (run: when the daemon stops). */
export async function runAfsteerd(argv: string[], write: (s: string) => void): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    write(AFSTEERD_USAGE);
    return cmd ? 0 : 2;
  }
  let flags: { values: { config?: string; json?: boolean; socket?: string; 'node-name'?: string }; positionals: string[] };
  try {
    flags = parseArgs({
      args: rest,
      options: { config: { type: 'string' }, json: { type: 'boolean' }, socket: { type: 'string' }, 'node-name': { type: 'string' } },
      strict: true,
      allowPositionals: cmd === 'prefer',
    });
  } catch (err) {
    process.stderr.write(`afsteerd: ${(err as Error).message}\n${AFSTEERD_USAGE}`);
    return 2;
  }
  if (cmd === 'status') return (await import('../cli/afsteerd-status')).runStatus(flags.values.socket, flags.values.json ?? false, write);
  if (cmd === 'prefer')
    return (await import('../cli/prefer')).runPrefer(flags.positionals, flags.values.socket, flags.values.json ?? false, write);
  if (cmd !== 'run') {
    process.stderr.write(`afsteerd: unknown command ${JSON.stringify(printable(String(cmd)))}\n${AFSTEERD_USAGE}`);
    return 2;
  }
  if (!flags.values.config) {
    process.stderr.write(`afsteerd run: --config FILE is required\n`);
    return 2;
  }
  // ADDs handed over by the plugin run the plugin's own code, loaded on the first one.
  const cniAdd: CniAddRunner = async (env, stdin, opts) => (await import('../cni/run-captured')).runCniCaptured(env, stdin, opts);
  return (await import('../negotiator/main')).runDaemon(flags.values.config, flags.values['node-name'], cniAdd);
}

/** Evaluates every module of the plugin and the operator commands (no native code), for the program's code cache (build time). */
export async function preloadForCodeCache(): Promise<void> {
  await Promise.all([import('../cli/show'), import('../cli/steer')]);
  await preloadVerbs();
}
