/** `afsteerd run --config FILE`: loads the config, the cluster key and/or the node's identity, then runs the negotiator until a signal. */
import { describeError } from '../util/describe-error';
import { configureLog, log } from '../util/log';
import type { CniAddRunner } from './control/handoff-server';
import { ConfigError, type DaemonConfig, loadDaemonConfig, parseDaemonConfig } from './daemon-config';
import type { Credentials } from './start';

/**
 * Runs afsteerd from the config file at configPath (nodeName overridden when given); resolves with
 * the exit code (2: bad config or key). cniAdd: the plugin's ADD, for ADDs handed over on the control socket.
 */
export async function runDaemon(configPath: string, nodeName?: string, cniAdd?: CniAddRunner): Promise<number> {
  let cfg: DaemonConfig;
  try {
    cfg = loadDaemonConfig(configPath);
    // One config for every node (a Kubernetes ConfigMap), the node's name from the command line.
    if (nodeName !== undefined) cfg = parseDaemonConfig(JSON.stringify({ ...cfg, nodeName }), `${configPath} with --node-name`);
  } catch (err) {
    process.stderr.write(`afsteerd: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    return 2;
  }
  configureLog({ level: cfg.logLevel, base: { node: cfg.nodeName } });
  // pino JSON lines on stderr from here on (util/log's backend).
  const { usePino } = await import('./ops/pino-log');
  await usePino(cfg.logLevel, { node: cfg.nodeName });
  const { loadKey } = await import('./key');
  const { loadNodeIdentity } = await import('../identity/identity-files');
  const creds: Credentials = {};
  try {
    if (cfg.keyFile !== undefined) creds.key = loadKey(cfg.keyFile);
    if (cfg.identity !== undefined) {
      creds.identity = loadNodeIdentity(cfg.identity, Date.now());
      if (creds.identity.cert.node !== cfg.nodeName)
        throw new Error(`identity ${cfg.identity}: the certificate is for ${creds.identity.cert.node}, not ${cfg.nodeName}`);
    }
  } catch (err) {
    process.stderr.write(`afsteerd: ${describeError(err)}\n`);
    return 2;
  }
  // The daemon's modules (maps, sockets) load only once the config and key are good.
  const { startDaemon } = await import('./start');
  try {
    return await startDaemon(cfg, creds, cniAdd);
  } catch (err) {
    const cause = (err as Error).cause;
    log.error('afsteerd failed to start', { error: describeError(err), ...(cause ? { cause: describeError(cause) } : {}) });
    return 1;
  }
}
