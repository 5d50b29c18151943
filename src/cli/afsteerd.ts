/**
 * The `afsteerd` command (the same executable as the plugin, called by a second name):
 *   afsteerd run --config FILE                  run the negotiator in the foreground
 *   afsteerd status [--json] [--socket PATH]    ask a running one for peers, pairs, switches
 *   afsteerd prefer PEER-NODE|CNF-ID ipv4|ipv6|auto [--socket PATH]   pin a family (auto: negotiate)
 */
import { parseArgs } from 'node:util';
import { configureLog, log } from '../util/log';
import { printable, table } from './text';

/** Printable text for lines outside the tables (those escape each cell themselves). */
const clean = (s: unknown): string => printable(String(s));

const USAGE = `usage:
  afsteerd run --config FILE
  afsteerd status [--json] [--socket PATH]   (default socket /run/afsteer/afsteerd.sock)
  afsteerd prefer PEER-NODE|CNF-ID ipv4|ipv6|auto [--socket PATH]
`;

/** Renders a status answer as text. */
export function renderStatus(s: Record<string, any>): string {
  let out = `node ${clean(s.node)}  epoch ${clean(s.epoch)}  up ${Math.round(s.uptimeMs / 1000)}s  ${clean(s.addresses?.ipv4 ?? '-')} ${clean(s.addresses?.ipv6 ?? '-')} port ${s.port}\n`;
  out += `\nlocal pods: ${(s.endpoints ?? []).length}\n`;
  out += table(['POD', 'IFINDEX', 'IPV4', 'IPV6', 'POLICY'], (s.endpoints ?? []).map((e: any) => [String(e.cnf), String(e.ifindex), String(e.ipv4 ?? '-'), String(e.ipv6 ?? '-'), String(e.policy)]));
  out += `\npeers: ${(s.peers ?? []).length}\n`;
  const fam = (f: any) => (f ? `${f.state} rtt ${f.latency_ms ?? '-'}ms jit ${f.jitter_ms ?? '-'}ms loss ${f.packet_loss !== undefined ? (f.packet_loss * 100).toFixed(1) : '-'}%` : '-');
  out += table(['PEER', 'HEARD', 'PODS', 'IPV4', 'IPV6'], (s.peers ?? []).map((p: any) => [String(p.node), `${p.lastHeardMsAgo}ms ago`, String(p.endpoints), fam(p.families?.IPv4), fam(p.families?.IPv6)]));
  out += `\npairs: ${(s.pairs ?? []).length}\n`;
  out += table(['LOCAL', 'REMOTE', 'PEER', 'POLICY', 'PREFERRED', 'WIRE', 'REASON'], (s.pairs ?? []).map((p: any) => [String(p.local), String(p.remote), String(p.peer), String(p.policy), String(p.preferred ?? 'native'), String(p.wire), String(p.reason)]));
  out += `\nlast switches:\n`;
  out += table(['AT', 'PAIR', 'FROM', 'TO', 'REASON'], (s.switches ?? []).map((e: any) => [String(e.at), String(e.pair), String(e.from), String(e.to), String(e.reason)]));
  const drops = Object.entries(s.counters?.drops ?? {}).map(([k, v]) => `${clean(k)}=${v}`).join(' ');
  out += `\ndropped datagrams: ${drops || 'none'}\n`;
  return out;
}

/** Runs `afsteerd ARGS`; resolves with the exit code (run: when the daemon stops). */
export async function runAfsteerd(argv: string[], write: (s: string) => void): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    write(USAGE);
    return cmd ? 0 : 2;
  }
  let flags: { values: { config?: string; json?: boolean; socket?: string }; positionals?: string[] };
  try {
    flags = parseArgs({ args: rest, options: { config: { type: 'string' }, json: { type: 'boolean' }, socket: { type: 'string' } }, strict: true, allowPositionals: cmd === 'prefer' });
  } catch (err) {
    process.stderr.write(`afsteerd: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (cmd === 'prefer') {
    const { runPrefer } = await import('./prefer');
    return runPrefer((flags as { positionals?: string[] }).positionals ?? [], flags.values.socket ?? '/run/afsteer/afsteerd.sock', flags.values.json ?? false, write);
  }
  if (cmd === 'status') {
    const { controlRequest } = await import('../negotiator/control');
    try {
      const s = await controlRequest(flags.values.socket ?? '/run/afsteer/afsteerd.sock', { op: 'status' }, 3000);
      write(flags.values.json ? JSON.stringify(s, null, 2) + '\n' : renderStatus(s));
      return s.ok === true ? 0 : 1;
    } catch (err) {
      process.stderr.write(`afsteerd status: ${(err as Error).message}\n`);
      return 1;
    }
  }
  if (cmd !== 'run') {
    process.stderr.write(`afsteerd: unknown command ${JSON.stringify(clean(cmd))}\n${USAGE}`);
    return 2;
  }
  if (!flags.values.config) {
    process.stderr.write(`afsteerd run: --config FILE is required\n`);
    return 2;
  }
  const { loadDaemonConfig, ConfigError } = await import('../negotiator/config');
  let cfg;
  try {
    cfg = loadDaemonConfig(flags.values.config);
  } catch (err) {
    process.stderr.write(`afsteerd: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    return 2;
  }
  configureLog({ level: cfg.logLevel, base: { node: cfg.nodeName } });
  const { usePino } = await import('../negotiator/pino-log');
  await usePino(cfg.logLevel, { node: cfg.nodeName });
  const { loadKey } = await import('../negotiator/key');
  let key: Buffer;
  try {
    key = loadKey(cfg.keyFile);
  } catch (err) {
    process.stderr.write(`afsteerd: ${(err as Error).message}\n`);
    return 2;
  }
  const { startDaemon } = await import('../negotiator/run');
  try {
    return await startDaemon(cfg, key);
  } catch (err) {
    log.error('afsteerd failed to start', { error: (err as Error).message, ...((err as Error).cause ? { cause: String(((err as Error).cause as Error).message ?? (err as Error).cause) } : {}) });
    return 1;
  }
}
