/** Structured logging to stderr (never stdout, which carries the CNI result) and an optional file. */
import { writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { APPEND_FLAGS, ensureTrustedDir, openOwnFile } from './safe-fs';

/** Severity of a log line. */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger that writes one JSON object per line. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

interface Sink {
  level: Level;
  /** Open log file (a regular file afsteer owns, see safe-fs). */
  fd?: number;
  stderr: boolean;
  base: Record<string, unknown>;
}

const sink: Sink = { level: 'info', stderr: true, base: {} };

/**
 * Configures where log lines go; called once the network config is parsed. A file is opened
 * here, without following a link or blocking (O_NOFOLLOW | O_NONBLOCK), in a trusted directory,
 * and must be a regular file owned by root: otherwise an UnsafePathError, before anything else.
 */
export function configureLog(opts: { level?: Level; file?: string; stderr?: boolean; base?: Record<string, unknown> }): void {
  if (opts.level) sink.level = opts.level;
  if (opts.file !== undefined) {
    ensureTrustedDir(dirname(opts.file), 0o750);
    sink.fd = openOwnFile(opts.file, APPEND_FLAGS, 0o640);
  }
  if (opts.stderr !== undefined) sink.stderr = opts.stderr;
  if (opts.base) sink.base = { ...sink.base, ...opts.base };
}

/** Another writer of log lines (afsteerd's pino, src/negotiator/pino-log.ts); the plugin keeps this file's own. */
export type LogBackend = (level: Level, msg: string, fields?: Record<string, unknown>) => void;
let backend: LogBackend | undefined;

/** Sends every log line to fn instead (levels are then fn's to filter). */
export function setLogBackend(fn: LogBackend | undefined): void {
  backend = fn;
}

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  if (backend) return backend(level, msg, fields);
  if (rank[level] < rank[sink.level]) return;
  // ms: time since process start, so a slow CNI call shows where its time went.
  const line = JSON.stringify({ ts: new Date().toISOString(), ms: Math.round(performance.now() * 10) / 10, level, msg, ...sink.base, ...fields }) + '\n';
  if (sink.stderr) process.stderr.write(line);
  if (sink.fd !== undefined) {
    try {
      writeSync(sink.fd, line);
    } catch {
      // A broken log file must never fail the CNI operation.
    }
  }
}

/** The process-wide logger. */
export const log: Logger = {
  debug: (m, f) => write('debug', m, f),
  info: (m, f) => write('info', m, f),
  warn: (m, f) => write('warn', m, f),
  error: (m, f) => write('error', m, f),
};
