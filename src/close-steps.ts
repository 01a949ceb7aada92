import type { Logger } from './logger.js';

/**
 * Runs close steps last-first (the reverse of how things were opened); a step that fails is logged
 * and the rest still run.
 */
export async function runCloseSteps(steps: readonly (() => Promise<unknown>)[], logger: Logger): Promise<void> {
  for (const step of [...steps].reverse()) {
    try {
      await step();
    } catch (err) {
      logger.error({ err: (err as Error).message }, 'close step failed');
    }
  }
}
