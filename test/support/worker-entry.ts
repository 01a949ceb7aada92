/**
 * `pyexec worker <stages>` with a fault hook, for tests that kill a worker at a named point:
 *
 *   node --import tsx test/support/worker-entry.ts <config.json> <redis-url> <fault-point> <stage>...
 *
 * The process exits with status 137 (as if killed) when it reaches <fault-point> (a FaultPoint of
 * src/workers/stage-runtime.ts, e.g. `handoff:execution`). Production entry points never wire
 * faults: this file is the only way in.
 */

import { onShutdown } from '../../src/cli/up-command.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { preflight } from '../../src/ops/preflight.js';
import type { Stage } from '../../src/queues/envelope.js';
import { Fleet } from '../../src/workers/fleet.js';
import type { FaultPoint } from '../../src/workers/stage-runtime.js';

const [configFile, redisUrl, fault, ...stages] = process.argv.slice(2);
if (!configFile || !redisUrl || !fault || stages.length === 0)
  throw new Error('usage: worker-entry.ts <config> <redis-url> <fault-point> <stage>...');
const config = loadConfig(configFile);
const logger = createLogger({ level: process.env['PYEXEC_LOG_LEVEL'] ?? 'warn' });
const { generator } = await preflight(config, { stages: stages as Stage[], logger });
const fleet = await Fleet.start({
  config,
  redisUrl,
  stages: stages as Stage[],
  logger,
  metricsPort: null,
  ...(generator ? { generator } : {}),
  faults: (point: FaultPoint) => {
    if (point === fault) process.exit(137);
  },
});
onShutdown((grace) => fleet.close(grace), config.pyexec.shutdown_grace_ms, logger);
