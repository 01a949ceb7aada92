/**
 * SIGTERM to execution worker processes (separate OS processes, as SREs run them) while a request
 * runs there, against one real Redis. Covers what only real processes show: the drain (readiness
 * false, no new job taken), the exit within the grace period, and what happens to a run that
 * cannot finish in time — code that may write to EPICS ends as `needs_review` and never runs on
 * another worker, read-only code is re-queued and runs again there; a second SIGTERM exits at
 * once and the stalled write still ends as `needs_review`. Nothing is lost: every request ends.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { eventually, sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';
import { executionsKey, PatternAnalyzer, ScriptedGenerator, simplePolicy } from '../support/ops-fakes.js';
import { type FleetProcess, killAll, spawnFleetProcess } from '../support/ops-processes.js';

let bed: TestBed | undefined;
let redis: Redis | undefined;
const processes: FleetProcess[] = [];
after(() => stopRedis());
afterEach(async () => {
  await killAll(processes);
  await bed?.close();
  bed = undefined;
  redis?.disconnect();
});

/** This process runs every stage but execution; execution runs in worker processes. */
async function setUp(pyexec: Record<string, unknown>) {
  bed = await testBed({
    pyexec: { lock_duration_ms: 1500, stalled_interval_ms: 1000, concurrency: { execution: 1 }, ...pyexec },
  });
  redis = new Redis(bed.redisUrl);
  await bed.startFleet({
    stages: ['generation', 'analysis', 'approval', 'result'],
    generator: new ScriptedGenerator(),
    analyzer: new PatternAnalyzer(),
    decidePolicy: simplePolicy,
  });
  return bed;
}

async function worker(b: TestBed): Promise<FleetProcess> {
  const p = await spawnFleetProcess(b.config, b.redisUrl, ['execution']);
  processes.push(p);
  return p;
}

const runs = async (b: TestBed, requestId: string) =>
  Number((await redis!.hget(executionsKey(b.config.pyexec.redis.prefix), requestId)) ?? 0);

/** Waits until the request's code has started in some execution worker. */
const started = (b: TestBed, requestId: string) =>
  eventually(async () => ((await runs(b, requestId)) > 0 ? true : undefined), 30_000, 'the run to start');

async function finished(b: TestBed, requestId: string) {
  const res = await b.client.wait(requestId, { timeoutMs: 60_000 });
  assert.equal(res.kind, 'finished', JSON.stringify(res));
  return res.kind === 'finished' ? res.response : (undefined as never);
}

async function readyz(p: FleetProcess) {
  const res = await fetch(p.url('/readyz'));
  return { status: res.status, body: (await res.json()) as { ready: boolean; state: string } };
}

describe('SIGTERM to an execution worker', () => {
  describe('while a request runs that finishes within the grace period', () => {
    it('turns not-ready, takes no new job, lets the run finish, and exits 0', async () => {
      const b = await setUp({ shutdown_grace_ms: 20_000 });
      const a = await worker(b);
      assert.equal((await readyz(a)).status, 200);
      const { requestId } = await b.client.submit(sampleRequest({ task_objective: 'ok sleep:2500' }));
      await started(b, requestId);
      a.child.kill('SIGTERM');
      const draining = await eventually(async () => {
        const r = await readyz(a);
        return r.body.state === 'draining' ? r : undefined;
      });
      assert.equal(draining.status, 503);
      assert.equal(draining.body.ready, false);
      assert.equal((await (await fetch(a.url('/healthz'))).json()).state, 'draining', 'alive, and says so');
      // A request submitted now is not taken by the draining worker.
      const later = (await b.client.submit(sampleRequest({ task_objective: 'ok' }))).requestId;
      assert.equal(await a.exited, 0);
      const first = await finished(b, requestId);
      assert.equal(first.status, 'succeeded');
      assert.equal(await runs(b, requestId), 1);
      assert.equal(await runs(b, later), 0, 'the draining worker took no new job');
      await worker(b);
      assert.equal((await finished(b, later)).status, 'succeeded');
      assert.equal(await runs(b, later), 1);
    });
  });

  describe('while code that may write to EPICS runs past the grace period', () => {
    it('ends the request as needs_review, exits within the grace, and no other worker runs the code', async () => {
      const b = await setUp({ shutdown_grace_ms: 2000 });
      const a = await worker(b);
      const { requestId } = await b.client.submit(sampleRequest({ task_objective: 'write sleep:120000' }));
      await started(b, requestId);
      const standby = await worker(b);
      a.child.kill('SIGTERM');
      assert.equal(await a.exited, 0, `exits by itself, long before the 120 s run would end: ${a.stderr()}`);
      const r = await finished(b, requestId);
      assert.equal(r.status, 'failed');
      assert.equal(r.detail, 'needs_review');
      assert.match(r.reason ?? '', /may have written to EPICS/);
      assert.equal(r.execution_mode, 'write_access');
      // The standby worker is alive and idle: the job is not queued anywhere for it.
      assert.equal((await readyz(standby)).status, 200);
      const counts = await b.fleets[0]!.queues.execution.getJobCounts('waiting', 'delayed', 'active');
      assert.deepEqual(counts, { waiting: 0, delayed: 0, active: 0 });
      assert.equal(await runs(b, requestId), 1, 'the write ran once');
    });
  });

  describe('while read-only code runs past the grace period', () => {
    it('re-queues it, and another worker runs it to success', async () => {
      const b = await setUp({ shutdown_grace_ms: 1500 });
      const a = await worker(b);
      // Only the first run is long: a busy machine that starts the standby slowly cannot let it finish first.
      const { requestId } = await b.client.submit(sampleRequest({ task_objective: 'ok sleep-once:60000' }));
      await started(b, requestId);
      await worker(b);
      a.child.kill('SIGTERM');
      assert.equal(await a.exited, 0);
      const r = await finished(b, requestId);
      assert.equal(r.status, 'succeeded');
      assert.equal(r.execution_mode, 'read_only');
      assert.equal(await runs(b, requestId), 2, 'interrupted once, then run again on the other worker');
    });
  });

  describe('when a second SIGTERM arrives during the drain', () => {
    it('exits at once; the write left running ends as needs_review through stall detection, not a rerun', async () => {
      const b = await setUp({ shutdown_grace_ms: 60_000 });
      const a = await worker(b);
      const { requestId } = await b.client.submit(sampleRequest({ task_objective: 'write sleep:120000' }));
      await started(b, requestId);
      await worker(b);
      a.child.kill('SIGTERM');
      await eventually(async () => ((await readyz(a)).body.state === 'draining' ? true : undefined));
      a.child.kill('SIGTERM');
      assert.equal(await a.exited, 130);
      const r = await finished(b, requestId);
      assert.equal(r.status, 'failed');
      assert.equal(r.detail, 'needs_review');
      assert.equal(await runs(b, requestId), 1);
    });
  });
});
