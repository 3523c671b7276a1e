// pino, JSON to stdout; level from LOG_LEVEL. Secrets never reach a log line:
// the authorization headers are redacted wherever they appear.

import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino({
    name: options.name ?? 'creditgate',
    level: options.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: ['req.headers.authorization', 'headers.authorization', '*.authorization'],
  });
}

/** A logger that drops everything: the middleware's default inside someone else's app. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
