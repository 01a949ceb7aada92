import { createRequire } from 'node:module';
import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** @defaultValue $PYEXEC_LOG_LEVEL, else "info" */
  level?: string;
  name?: string;
  /**
   * Human-readable lines (pino-pretty) instead of JSON. @defaultValue $PYEXEC_LOG_FORMAT (`pretty`
   * or `json`), else pretty when stderr is a terminal: people read a terminal, log shippers read JSON.
   */
  pretty?: boolean;
  /** Where lines go. @defaultValue stderr (stdout stays free for CLI output) */
  destination?: DestinationStream | NodeJS.WritableStream;
}

const REDACT = [
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
];

function wantsPretty(options: LoggerOptions): boolean {
  if (options.pretty !== undefined) return options.pretty;
  const format = process.env['PYEXEC_LOG_FORMAT'];
  if (format === 'pretty' || format === 'json') return format === 'pretty';
  return options.destination === undefined && process.stderr.isTTY === true;
}

/**
 * The process logger: pino on stderr, JSON or (on a terminal) pino-pretty. Generated code, prompts
 * and credentials are redacted at every level; they belong in the execution folder. pino-pretty is
 * loaded only when it is used (it runs in this thread, synchronously: no transport worker).
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const settings = {
    name: options.name ?? 'pyexec',
    level: options.level ?? process.env['PYEXEC_LOG_LEVEL'] ?? 'info',
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  if (wantsPretty(options)) {
    const pretty = createRequire(import.meta.url)('pino-pretty') as (o: Record<string, unknown>) => DestinationStream;
    const destination = options.destination ?? 2;
    return pino(
      settings,
      pretty({
        destination,
        sync: true,
        colorize: options.destination === undefined && process.stderr.isTTY === true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
      }),
    );
  }
  return pino(settings, (options.destination as DestinationStream | undefined) ?? pino.destination(2));
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
