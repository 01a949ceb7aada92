/**
 * `pyexec status --json` against a fleet on a real Redis: per stage the queue depth (with the
 * approval hold's held jobs), the worker processes and their capacity, the oldest waiting job and
 * the failure rate, all from what is in Redis (other processes' work counts too); and a non-zero
 * exit when Redis is unreachable.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, afterEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { statusCommand } from '../../src/cli/status-command.js';
import { LeaseStore } from '../../src/executors/kernel-leases.js';
import { keyPrefix } from '../../src/redis/connection.js';
import { eventually, sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';
import { PatternAnalyzer, RecordingExecutor, ScriptedGenerator, simplePolicy } from '../support/ops-fakes.js';

let bed: TestBed | undefined;
let conn: Redis | undefined;
after(() => stopRedis());
afterEach(async () => {
  await bed?.close();
  bed = undefined;
  conn?.disconnect();
});

interface Row {
  stage: string;
  waiting: number;
  active: number;
  held?: number;
  delayed?: number;
  workers: number;
  capacity: number;
  oldest_waiting_seconds: number | null;
  finished_last_15m: number;
  failure_rate_15m: number;
}

async function status(b: TestBed): Promise<Row[]> {
  return (await statusJson(b)).stages;
}

async function statusJson(b: TestBed): Promise<{ stages: Row[]; kernel_pools: unknown[] }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const code = await statusCommand(undefined, { json: true, config: b.config, redisUrl: b.redisUrl, out });
  assert.equal(code, 0);
  return JSON.parse(text) as { stages: Row[]; kernel_pools: unknown[] };
}

describe('pyexec status', () => {
  it('shows depth, held jobs, workers and capacity, the oldest waiting job and the failure rate per stage', async () => {
    bed = await testBed({
      python_executor: { max_execution_retries: 0 },
      approval: {
        global_mode: 'selective',
        capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } },
      },
      pyexec: { concurrency: { execution: 3 } },
    });
    conn = new Redis(bed.redisUrl);
    const fakes = { generator: new ScriptedGenerator(), analyzer: new PatternAnalyzer(), decidePolicy: simplePolicy };
    const executors = { local: new RecordingExecutor(conn, bed.config.pyexec.redis.prefix) };
    // Two processes' worth of execution workers, and every other stage once.
    const main = await bed.startFleet({ ...fakes, executors });
    await bed.startFleet({ stages: ['execution'], ...fakes, executors });
    const ok = (await bed.client.submit(sampleRequest({ task_objective: 'ok' }))).requestId;
    const bad = (await bed.client.submit(sampleRequest({ task_objective: 'code-error' }))).requestId;
    for (const id of [ok, bad]) await bed.client.wait(id, { timeoutMs: 30_000 });
    await bed.client.submit(sampleRequest({ task_objective: 'write' }));
    await eventually(async () => ((await main.approvals.listHeld()).length === 1 ? true : undefined));
    // A generation job that no worker takes (generation paused) shows as waiting, with its age.
    await main.workers.get('generation')!.pause();
    await bed.client.submit(sampleRequest({ task_objective: 'ok' }));

    const rows = await status(bed);
    const row = (stage: string) => rows.find((r) => r.stage === stage)!;
    assert.deepEqual(
      rows.map((r) => r.stage),
      ['generation', 'analysis', 'approval', 'execution', 'result'],
    );
    assert.equal(row('approval').held, 1);
    assert.equal(row('generation').waiting, 1);
    const age = row('generation').oldest_waiting_seconds;
    assert.ok(age !== null && age >= 0);
    assert.equal(row('execution').oldest_waiting_seconds, null);
    assert.equal(row('execution').workers, 2);
    assert.equal(row('execution').capacity, 6);
    assert.equal(row('result').workers, 1);
    // Execution: one run ok, one failed with its retries exhausted.
    assert.equal(row('execution').finished_last_15m, 2);
    assert.equal(row('execution').failure_rate_15m, 0.5);
    assert.equal(row('result').failure_rate_15m, 0);
  });

  it('shows the kernel pools sharing this Redis: kernels by mode and state', async () => {
    bed = await testBed();
    const redis = new Redis(bed.redisUrl);
    try {
      const store = new LeaseStore(redis, keyPrefix(bed.config.pyexec.redis.prefix), 'static-test');
      await store.register('http://a', 'k1', 'read_only');
      await store.register('http://a', 'k2', 'read_only');
      await store.register('http://a', 'k3', 'write_access');
      const leased = await store.claim('read_only', 'lease-1', 'test', 30_000);
      assert.ok(leased);
      const status = await statusJson(bed);
      assert.deepEqual(status.kernel_pools, [
        {
          pool: 'static-test',
          read_only: { idle: 1, leased: 1, recycling: 0, total: 2 },
          write_access: { idle: 1, leased: 0, recycling: 0, total: 1 },
        },
      ]);
    } finally {
      redis.disconnect();
    }
  });

  it('exits non-zero when Redis is unreachable', async () => {
    bed = await testBed();
    const code = await statusCommand(undefined, {
      json: true,
      config: bed.config,
      redisUrl: 'redis://127.0.0.1:1',
      out: new PassThrough(),
    });
    assert.equal(code, 1);
  });
});
