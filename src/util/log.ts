/**
 * Structured logging to stderr (never stdout, which carries the CNI result) and an optional file.
 * One process-wide sink, or, inside withLogScope (afsteerd running a CNI ADD handed over by the
 * plugin), that request's own sink, whose "stderr" lines go back to the plugin.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, writeSync } from 'node:fs';
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
  /** A scope's stderr: collects lines instead of writing them to the process's stderr. */
  collect?: (line: string) => void;
  /** A scope's clock: its ms field counts from here (minus offsetMs), not from process start. */
  t0?: number;
  offsetMs?: number;
  /** AFSTEER_TRACE_PHASES: phase lines (tracePhase) are written. */
  trace: boolean;
}

/** Environment variable that turns on the per-phase timing lines on stderr. */
export const TRACE_PHASES_ENV = 'AFSTEER_TRACE_PHASES';
const processSink: Sink = { level: 'info', stderr: true, base: {}, trace: Boolean(process.env[TRACE_PHASES_ENV]) };
const scopes = new AsyncLocalStorage<Sink>();
const current = (): Sink => scopes.getStore() ?? processSink;

/**
 * Configures where log lines go; called once the network config is parsed. A file is opened
 * here, without following a link or blocking (O_NOFOLLOW | O_NONBLOCK), in a trusted directory,
 * and must be a regular file owned by root: otherwise an UnsafePathError, before anything else.
 */
export function configureLog(opts: { level?: Level; file?: string; stderr?: boolean; base?: Record<string, unknown> }): void {
  const sink = current();
  if (opts.level) sink.level = opts.level;
  if (opts.file !== undefined) {
    ensureTrustedDir(dirname(opts.file), 0o750);
    sink.fd = openOwnFile(opts.file, APPEND_FLAGS, 0o640);
  }
  if (opts.stderr !== undefined) sink.stderr = opts.stderr;
  if (opts.base) sink.base = { ...sink.base, ...opts.base };
}

/** Another writer of log lines (afsteerd's pino, src/negotiator/ops/pino-log.ts); the plugin keeps this file's own. */
export type LogBackend = (level: Level, msg: string, fields?: Record<string, unknown>) => void;
let backend: LogBackend | undefined;

/** Sends every log line to fn instead (levels are then fn's to filter). */
export function setLogBackend(fn: LogBackend | undefined): void {
  backend = fn;
}

/** ms for a log line: since process start, or in a scope since the handed-over request's process started. */
export function logClockMs(): number {
  const sink = current();
  const ms = sink.t0 === undefined ? performance.now() : performance.now() - sink.t0 + (sink.offsetMs ?? 0);
  return Math.round(ms * 10) / 10;
}

/** Writes a raw line (already formatted, newline-terminated) to the current sink's stderr. */
export function writeStderrLine(line: string): void {
  const sink = current();
  if (!sink.stderr) return;
  if (sink.collect) sink.collect(line);
  else process.stderr.write(line);
}

/**
 * With AFSTEER_TRACE_PHASES set (for a handed-over ADD: set in the plugin's environment), writes
 * `{"phase":…,"ms":…}` to stderr: where an invocation's time goes. Off, it costs one property read.
 */
export function tracePhase(phase: string): void {
  const sink = current();
  if (sink.trace) writeStderrLine(JSON.stringify({ phase, ms: logClockMs() }) + '\n');
}

function write(level: Level, msg: string, fields?: Record<string, unknown>): void {
  const sink = current();
  // afsteerd's own lines go to its backend (pino); a handed-over ADD's stay in its scope, as the plugin writes them.
  if (backend && sink === processSink) {
    backend(level, msg, fields);
    return;
  }
  if (rank[level] < rank[sink.level]) return;
  // ms: time since process start, so a slow CNI call shows where its time went.
  const line = JSON.stringify({ ts: new Date().toISOString(), ms: logClockMs(), level, msg, ...sink.base, ...fields }) + '\n';
  if (sink.stderr) writeStderrLine(line);
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

/**
 * Runs fn with a log sink of its own (level info, nothing configured, stderr lines given to
 * collect; ms counted as offsetMs + time since the call; phase lines when trace), closing any log file fn's configureLog
 * opened when it ends. The daemon's process-wide sink is untouched.
 */
export async function withLogScope<T>(
  opts: { collect: (line: string) => void; offsetMs: number; trace: boolean },
  fn: () => Promise<T>,
): Promise<T> {
  const sink: Sink = {
    level: 'info',
    stderr: true,
    base: {},
    collect: opts.collect,
    t0: performance.now(),
    offsetMs: opts.offsetMs,
    trace: opts.trace,
  };
  try {
    return await scopes.run(sink, fn);
  } finally {
    if (sink.fd !== undefined) {
      try {
        closeSync(sink.fd);
      } catch {
        // Already closed: nothing to release.
      }
    }
  }
}
