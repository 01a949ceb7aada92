import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * The process logger: pino JSON on stderr (stdout stays free for CLI output). Generated code,
 * prompts and credentials are redacted at every level; they belong in the execution folder.
 */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'pyexec',
      level: options.level ?? process.env['PYEXEC_LOG_LEVEL'] ?? 'info',
      redact: {
        paths: [
          'code',
          '*.code',
          'prompt',
          '*.prompt',
          'token',
          '*.token',
          'apiKey',
          '*.apiKey',
          'authorization',
          '*.authorization',
        ],
        censor: '[redacted]',
      },
    },
    pino.destination(2),
  );
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
