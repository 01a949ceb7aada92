/**
 * A fleet worker process for the operations tests and the scale benchmark: what `pyexec worker
 * <stages>` runs (Fleet, the ops server, SIGTERM handling), with the fakes of ops-fakes.ts behind
 * the plug-in interfaces so that runs are cheap and countable.
 *
 *   node --import tsx test/support/ops-fleet-entry.ts <config.json> <redis-url> <stage>...
 *
 * Prints one JSON line `{"pid":…,"metricsPort":…}` on stdout once the fleet is running.
 * `PYEXEC_TEST_FAULT=<point>` (a FaultPoint of stage-runtime.ts) kills the process (SIGKILL) at
 * that point.
 */

import { onShutdown } from '../../src/cli/up-command.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import type { Stage } from '../../src/queues/envelope.js';
import { createRedis } from '../../src/redis/connection.js';
import { Fleet } from '../../src/workers/fleet.js';
import type { FaultPoint } from '../../src/workers/stage-runtime.js';
import { PatternAnalyzer, RecordingExecutor, ScriptedGenerator, simplePolicy } from './ops-fakes.js';

const [configFile, redisUrl, ...stages] = process.argv.slice(2);
if (!configFile || !redisUrl) throw new Error('usage: ops-fleet-entry.ts <config> <redis-url> <stage>...');
const config = loadConfig(configFile);
const logger = createLogger({ level: process.env['PYEXEC_LOG_LEVEL'] ?? 'warn' });
const redis = createRedis(redisUrl, 'worker');
const fault = process.env['PYEXEC_TEST_FAULT'];
const fleet = await Fleet.start({
  config,
  redisUrl,
  stages: stages as Stage[],
  logger,
  metricsPort: 0,
  generator: new ScriptedGenerator(),
  analyzer: new PatternAnalyzer(),
  decidePolicy: simplePolicy,
  executors: { local: new RecordingExecutor(redis, config.pyexec.redis.prefix) },
  ...(fault ? { faults: (point: FaultPoint) => point === fault && process.kill(process.pid, 'SIGKILL') } : {}),
});
process.stdout.write(`${JSON.stringify({ pid: process.pid, metricsPort: fleet.metricsPort })}\n`);
onShutdown(
  async (grace) => {
    await fleet.close(grace);
    redis.disconnect();
  },
  config.pyexec.shutdown_grace_ms,
  logger,
);
