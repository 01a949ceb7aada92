/**
 * A fleet worker process of the chaos runs: what `pyexec worker <stage>` runs (the real analyzer
 * and policy, the configured executors: kernels on the listed Jupyter servers), with the chaos
 * generator. An execution process notes in Redis which request its code is running for
 * (`<prefix>:chaos:running`, field = `<pid>:<request id>`), so that the run can kill it while code runs.
 *
 *   node --import tsx test/support/chaos-fleet-entry.ts <config.json> <redis-url> <stage>...
 *
 * Prints one JSON line `{"pid":…,"metricsPort":…}` on stdout once the fleet is running.
 */
import { onShutdown } from '../../src/cli/up-command.js';
import { loadConfig } from '../../src/config.js';
import type { ExecutionTask, Executor } from '../../src/executors/executor.js';
import { createExecutors, type ExecutorSet } from '../../src/executors/index.js';
import { createLogger } from '../../src/logger.js';
import type { Stage } from '../../src/queues/envelope.js';
import { createRedis, keyPrefix } from '../../src/redis/connection.js';
import { Fleet } from '../../src/workers/fleet.js';
import { ChaosGenerator } from './chaos-programs.js';

const [configFile, redisUrl, ...stages] = process.argv.slice(2);
if (!configFile || !redisUrl) throw new Error('usage: chaos-fleet-entry.ts <config> <redis-url> <stage>...');
const config = loadConfig(configFile);
const logger = createLogger({ level: process.env['PYEXEC_LOG_LEVEL'] ?? 'warn' });
const prefix = keyPrefix(config.pyexec.redis.prefix);
const redis = createRedis(redisUrl, 'worker');
const runningKey = `${prefix}:chaos:running`;

/** Notes the request whose code this process runs, for as long as it runs. */
function noted(executor: Executor): Executor {
  return {
    method: executor.method,
    async execute(task: ExecutionTask, signal: AbortSignal) {
      // One field per run (a process runs several at once): `<pid>:<request id>`.
      const field = `${process.pid}:${task.requestId}`;
      await redis.hset(runningKey, field, String(Date.now()));
      try {
        return await executor.execute(task, signal);
      } finally {
        await redis.hdel(runningKey, field).catch(() => {});
      }
    },
    ...(executor.close ? { close: () => executor.close!() } : {}),
  };
}

let set: ExecutorSet | undefined;
if (stages.includes('execution')) set = await createExecutors(config, { redisUrl, prefix, logger });
const fleet = await Fleet.start({
  config,
  redisUrl,
  stages: stages as Stage[],
  logger,
  metricsPort: 0,
  generator: new ChaosGenerator(),
  ...(set
    ? {
        executors: Object.fromEntries(
          Object.entries(set.executors).map(([method, ex]) => [method, ex && noted(ex)]),
        ) as ExecutorSet['executors'],
      }
    : {}),
});
process.stdout.write(`${JSON.stringify({ pid: process.pid, metricsPort: fleet.metricsPort })}\n`);
onShutdown(
  async (grace) => {
    await fleet.close(grace);
    await set?.close();
    redis.disconnect();
  },
  config.pyexec.shutdown_grace_ms,
  logger,
);
