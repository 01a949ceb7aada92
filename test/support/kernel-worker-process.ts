/**
 * An execution worker process for the kernel pool tests:
 *
 *   node --import tsx test/support/kernel-worker-process.ts <config.json> <redis url>
 *
 * Runs only the execution stage, with the executors createExecutors builds from the config (the
 * `container` method over the Jupyter servers the config lists). Prints `ready` once it takes jobs;
 * SIGTERM closes it.
 */
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config.js';
import { createExecutors } from '../../src/executors/index.js';
import { silentLogger } from '../../src/logger.js';
import { keyPrefix } from '../../src/redis/connection.js';
import { Fleet } from '../../src/workers/fleet.js';

const [file, redisUrl] = process.argv.slice(2);
if (!file || !redisUrl) throw new Error('usage: kernel-worker-process.ts <config.json> <redis url>');
const config = parseConfig(JSON.parse(readFileSync(file, 'utf8')), {});
const logger = silentLogger();
const set = await createExecutors(config, { redisUrl, prefix: keyPrefix(config.pyexec.redis.prefix), logger });
const fleet = await Fleet.start({
  config,
  redisUrl,
  stages: ['execution'],
  logger,
  metricsPort: null,
  executors: set.executors,
});
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void fleet
    .close(5000)
    .then(() => set.close())
    .finally(() => process.exit(0));
});
