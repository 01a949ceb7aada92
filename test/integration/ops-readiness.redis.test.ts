/**
 * `/healthz` and `/readyz` of a fleet process against a real redis-server that the test kills and
 * starts again, and during a drain. Covers what unit tests cannot: a worker connection that waits
 * out a lost Redis must not make the probe hang, and readiness must come back by itself.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Executor } from '../../src/executors/executor.js';
import type { Fleet } from '../../src/workers/fleet.js';
import { eventually, redis, sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';
import {
  executionsKey,
  PatternAnalyzer,
  RecordingExecutor,
  ScriptedGenerator,
  simplePolicy,
} from '../support/ops-fakes.js';

let bed: TestBed | undefined;
let conn: Redis | undefined;
after(() => stopRedis());
afterEach(async () => {
  await bed?.close();
  bed = undefined;
  conn?.disconnect();
});

async function probe(fleet: Fleet, route: '/readyz' | '/healthz') {
  const res = await fetch(`http://127.0.0.1:${fleet.metricsPort}${route}`, { signal: AbortSignal.timeout(10_000) });
  return {
    status: res.status,
    body: (await res.json()) as { ready?: boolean; state: string; checks?: Record<string, boolean> },
  };
}

const fakes = () => ({
  generator: new ScriptedGenerator(),
  analyzer: new PatternAnalyzer(),
  decidePolicy: simplePolicy,
});

describe('readiness', () => {
  describe('when Redis goes away and comes back', () => {
    it('is false while Redis is unreachable (alive all the while) and true again once it returns', async () => {
      bed = await testBed();
      const fleet = await bed.startFleet({ metricsPort: 0, ...fakes() });
      const { confinement, ...ready } = (await probe(fleet, '/readyz')).body as { confinement?: { method: string } };
      assert.deepEqual(ready, { ready: true, state: 'running', checks: { redis: true, executor: true } });
      assert.equal(confinement?.method, 'landlock', 'an execution worker says how its kernels are confined');
      const server = await redis();
      server.kill();
      const down = await eventually(async () => {
        const r = await probe(fleet, '/readyz');
        return r.status === 503 ? r : undefined;
      });
      assert.equal(down.body.checks?.['redis'], false);
      assert.equal(down.body.state, 'running');
      assert.equal((await probe(fleet, '/healthz')).status, 200, 'still alive');
      const metrics = await fetch(`http://127.0.0.1:${fleet.metricsPort}/metrics`, {
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(metrics.status, 200, 'a scrape answers without Redis');
      assert.match(await metrics.text(), /^pyexec_ready 0$/m);
      await server.restart();
      const up = await eventually(async () => {
        const r = await probe(fleet, '/readyz');
        return r.status === 200 ? r : undefined;
      }, 30_000);
      assert.equal(up.body.checks?.['redis'], true);
    });
  });

  describe('when no executor can run code', () => {
    it('is false for an execution worker, with the executor check named', async () => {
      bed = await testBed();
      const unusable: Executor & { ready(): Promise<boolean> } = {
        method: 'local',
        execute: () => Promise.reject(new Error('unused')),
        ready: async () => false,
      };
      const fleet = await bed.startFleet({
        stages: ['execution'],
        metricsPort: 0,
        ...fakes(),
        executors: { local: unusable },
      });
      const r = await probe(fleet, '/readyz');
      assert.equal(r.status, 503);
      assert.deepEqual(r.body.checks, { redis: true, executor: false });
    });
  });

  describe('while the process drains', () => {
    it('is false from the first moment, and the running request still finishes', async () => {
      bed = await testBed();
      conn = new Redis(bed.redisUrl);
      const prefix = bed.config.pyexec.redis.prefix;
      await bed.startFleet({ stages: ['generation', 'analysis', 'approval', 'result'], ...fakes() });
      const fleet = await bed.startFleet({
        stages: ['execution'],
        metricsPort: 0,
        ...fakes(),
        executors: { local: new RecordingExecutor(conn, prefix) },
      });
      const { requestId } = await bed.client.submit(sampleRequest({ task_objective: 'ok sleep:1500' }));
      await eventually(async () => ((await conn!.hget(executionsKey(prefix), requestId)) ? true : undefined));
      const closing = fleet.close(20_000);
      const r = await probe(fleet, '/readyz');
      assert.equal(r.status, 503);
      assert.equal(r.body.state, 'draining');
      await closing;
      assert.equal(fleet.state, 'stopped');
      const res = await bed.client.wait(requestId, { timeoutMs: 10_000 });
      assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
    });
  });
});
