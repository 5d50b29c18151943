/**
 * afsteerd's logs through pino: one JSON object per line on stderr, written synchronously (a
 * daemon that dies still leaves its last lines), level from the config. The plugin keeps
 * src/util/log.ts (no dependency to load in a CNI call that must return in milliseconds); the
 * negotiator's parts keep calling that module's `log`, which hands each line to pino here.
 * Lines: {"level":"info","ts":"2026-…","node":…,"msg":"switch","pair":…,"from":…,"to":…,"reason":…}.
 */
import { type Level, setLogBackend } from '../../util/log';

/** Installs pino as the log backend (level, and base fields on every line). */
export async function usePino(level: Level, base: Record<string, unknown>, fd = 2): Promise<void> {
  const { default: pino } = await import('pino');
  // Level names and an ISO "ts", as the plugin's lines have them (tools read both kinds alike).
  const logger = pino(
    {
      level,
      base: undefined,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
      timestamp: () => `,"ts":"${new Date().toISOString()}"`,
    },
    pino.destination({ fd, sync: true }),
  );
  setLogBackend((lvl, msg, fields) => {
    // Base fields merged here, not by pino, so a line that names the node itself has it once.
    logger[lvl](fields ? { ...base, ...fields } : base, msg);
  });
}
