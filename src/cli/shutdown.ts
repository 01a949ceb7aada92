import type { Logger } from '../logger.js';

/** Closes on SIGTERM / SIGINT within the grace period; a second signal exits at once. */
export function onShutdown(close: (graceMs: number) => Promise<void>, graceMs: number, logger: Logger): void {
  let signalled = false;
  const handler = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    signalled = true;
    logger.info({ signal, graceMs }, 'draining');
    close(graceMs).then(
      () => process.exit(0),
      (err) => {
        logger.error({ err: (err as Error).message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
