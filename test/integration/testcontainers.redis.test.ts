/**
 * testcontainers, where a Docker engine is present: Redis in a container (the same image and
 * settings a deployment uses) runs a request end to end through a fleet and a client. Where no
 * engine answers, as on this project's build machines, the test is skipped and says why. The whole
 * suite runs on a Redis container with PYEXEC_TEST_DOCKER=1 (test/support/harness.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PyexecClient } from '../../src/client/pyexec-client.js';
import { silentLogger } from '../../src/logger.js';
import { Fleet } from '../../src/workers/fleet.js';
import { sampleRequest, testConfig } from '../support/harness.js';
import { dockerUnavailable, startRedisContainer } from '../support/redis-container.js';

const skip = await dockerUnavailable();
if (skip) process.stdout.write(`# testcontainers: skipped, ${skip}\n`);

describe('Redis started by testcontainers', () => {
  it('runs a request end to end on a Redis container', { skip: skip ?? false }, async () => {
    const server = await startRedisContainer();
    const config = testConfig();
    try {
      const fleet = await Fleet.start({ config, redisUrl: server.url, logger: silentLogger(), metricsPort: null });
      const client = await PyexecClient.connect({ redisUrl: server.url, config });
      try {
        const { requestId } = await client.submit(sampleRequest());
        const res = await client.wait(requestId, { timeoutMs: 60_000 });
        assert.equal(res.kind, 'finished');
        assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
      } finally {
        await client.close();
        await fleet.close();
      }
    } finally {
      await server.stop();
      config.cleanup();
    }
  });
});
