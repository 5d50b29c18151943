/** Delegating to an IPAM plugin found on CNI_PATH, as CNI plugins do (same env, config with the ipam section). */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { log } from '../util/log';
import { CniCode, CniError } from './cni-error';
import type { NetConf } from './config';
import type { CniEnv } from './env';
import { parseResult, type Result } from './result';

/** How long a delegated IPAM call may take, ms. */
export const IPAM_TIMEOUT_MS = 30000;

/** Path of plugin `type` on CNI_PATH, or a code-7 error naming the directories searched. */
export function findPlugin(type: string, path: string[]): string {
  for (const dir of path) {
    const p = join(dir, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // try the next directory
    }
  }
  throw new CniError(CniCode.InvalidConfig, `IPAM plugin ${JSON.stringify(type)} not found in CNI_PATH (${path.join(':')})`);
}

/** The config an IPAM plugin receives: the network's identity and the ipam section. */
function ipamConfig(conf: NetConf): string {
  const { cniVersion, name, ipam, runtimeConfig, args } = conf as NetConf & { runtimeConfig?: unknown; args?: unknown };
  return JSON.stringify({ cniVersion, name, ipam, ...(runtimeConfig ? { runtimeConfig } : {}), ...(args ? { args } : {}) });
}

/** Runs the delegated IPAM plugin for command; returns its stdout (parsed JSON) or throws its error. */
export function execIpam(command: 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'VERSION', conf: NetConf, env: CniEnv, stdin?: string): unknown {
  if (!conf.ipam) throw new Error('no ipam section to delegate to');
  const plugin = findPlugin(conf.ipam.type, env.path);
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    CNI_COMMAND: command,
    CNI_CONTAINERID: env.containerId,
    CNI_NETNS: env.netns,
    CNI_IFNAME: env.ifname,
    CNI_PATH: env.path.join(':'),
  };
  const started = Date.now();
  const r = spawnSync(plugin, [], { input: stdin ?? ipamConfig(conf), env: childEnv, timeout: IPAM_TIMEOUT_MS, maxBuffer: 4 << 20 });
  log.debug('delegated ipam', { plugin, command, status: r.status, ms: Date.now() - started });
  if (r.error) throw new CniError(CniCode.IoFailure, `running IPAM plugin ${plugin} ${command} failed`, undefined, { cause: r.error });
  const out = r.stdout.toString().trim();
  let parsed: unknown;
  try {
    parsed = out ? JSON.parse(out) : undefined;
  } catch {
    parsed = undefined;
  }
  if (r.status !== 0) {
    const e = parsed as { code?: number; msg?: string; details?: string } | undefined;
    const stderr = r.stderr.toString().trim();
    throw new CniError(
      typeof e?.code === 'number' ? e.code : CniCode.Internal,
      `IPAM plugin ${conf.ipam.type} ${command} failed: ${e?.msg ?? (stderr || `exit status ${r.status ?? r.signal}`)}`,
      e?.details,
    );
  }
  return parsed;
}

/** IPAM ADD: the allocated addresses and routes. */
export function ipamAdd(conf: NetConf, env: CniEnv): Result {
  const raw = execIpam('ADD', conf, env);
  try {
    return parseResult(raw, `IPAM plugin ${conf.ipam?.type} result`);
  } catch (err) {
    throw new CniError(CniCode.Internal, (err as Error).message, undefined, { cause: err });
  }
}

/** IPAM DEL: releases the lease; idempotent in every reference IPAM plugin. */
export function ipamDel(conf: NetConf, env: CniEnv): void {
  execIpam('DEL', conf, env);
}
