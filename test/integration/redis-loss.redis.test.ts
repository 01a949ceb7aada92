/**
 * A lost Redis connection, with a real redis-server (AOF on) killed and restarted under a running
 * fleet: workers wait and carry on, nothing is lost, and a producer that cannot reach Redis gets a
 * clear error at once instead of hanging.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientClosedError, PyexecClient } from '../../src/client/pyexec-client.js';
import { MockGenerator } from '../../src/generators/mock-generator.js';
import { silentLogger } from '../../src/logger.js';
import { type LocalRedis, startLocalRedis } from '../../src/redis/redis-server.js';
import { Fleet } from '../../src/workers/fleet.js';
import { sampleRequest, testConfig } from '../support/harness.js';

let server: LocalRedis | undefined;
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
  await server?.stop();
});

describe('when Redis goes away', () => {
  it('a request in flight completes after Redis comes back, exactly once', async () => {
    server = await startLocalRedis({ appendOnly: true });
    const config = testConfig({ pyexec: { infra_attempts: 5 } });
    closers.push(async () => config.cleanup());
    // A slow generator keeps the request in flight while Redis is down.
    const generator = new MockGenerator({ behavior: 'success', delayMs: 1500 });
    const fleet = await Fleet.start({
      config,
      redisUrl: server.url,
      logger: silentLogger(),
      metricsPort: null,
      generator,
    });
    closers.push(() => fleet.close());
    const client = await PyexecClient.connect({ redisUrl: server.url, config });
    closers.push(() => client.close());
    const { requestId } = await client.submit(sampleRequest());
    await sleep(500);
    server.kill();
    await sleep(1500);
    await server.restart();
    const res = await client.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(res.kind, 'finished');
    assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
    const all = await fleet.queues.result.getJobs(['completed', 'active', 'waiting', 'delayed', 'failed']);
    assert.equal(all.filter((j) => j.data.requestId === requestId).length, 1);
  });

  it('a producer gets a clear error at once when Redis is unreachable', async () => {
    const config = testConfig();
    closers.push(async () => config.cleanup());
    const dead = 'redis://127.0.0.1:1';
    await assert.rejects(
      PyexecClient.connect({ redisUrl: dead, config }),
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:1/,
    );
  });

  it('a producer whose Redis dies after connecting gets an error from submit, not a hang', async () => {
    const own = await startLocalRedis();
    const config = testConfig();
    closers.push(async () => config.cleanup());
    const client = await PyexecClient.connect({ redisUrl: own.url, config });
    closers.push(() => client.close());
    await own.stop();
    await assert.rejects(client.submit(sampleRequest()), (err: Error) => err.message.length > 0);
  });
  it('closing a producer ends its waits and streams, even while Redis is away (nothing rides on after close)', async () => {
    const own = await startLocalRedis();
    const config = testConfig();
    closers.push(async () => config.cleanup());
    // No fleet: the request stays queued, so the wait and the stream block on its events.
    const client = await PyexecClient.connect({ redisUrl: own.url, config });
    const { requestId } = await client.submit(sampleRequest());
    const waiting = client.wait(requestId, { timeoutMs: 600_000 });
    const streamed: string[] = [];
    const streaming = (async () => {
      for await (const ev of client.stream(requestId)) streamed.push(ev.type);
    })();
    await sleep(300);
    await own.stop(); // both now ride the outage, retrying
    await sleep(500);
    const t0 = Date.now();
    await client.close();
    await assert.rejects(waiting, (err: Error) => err instanceof ClientClosedError && err.message.includes(requestId));
    await streaming; // ends, without an error
    assert.ok(Date.now() - t0 < 5_000, `ended ${Date.now() - t0} ms after close`);
    assert.ok(streamed.includes('submitted'), `the stream saw the stored events first: ${streamed.join(', ')}`);
  });
});
