/**
 * No request lost, none ended twice, no write run twice: each way the fleet once lost or
 * half-ended a request, reproduced with real worker processes (separate OS processes, killed with
 * SIGKILL at a named point or from outside) against one real Redis. Covers the end of a request
 * (one atomic step, completed when left half-done), the reaper (a failed job nobody heard, a reaper
 * killed between deciding and acting, a read-only run stopped three times) and the producer's side
 * (a request that cannot be serialised, a reused thread id, an input the kernel cannot decode).
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { InvalidRequestError, RequestTooLargeError } from '../../src/errors.js';
import { keyPrefix } from '../../src/redis/connection.js';
import { eventually, sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';
import {
  executionsKey,
  PatternAnalyzer,
  RecordingExecutor,
  ScriptedGenerator,
  simplePolicy,
} from '../support/ops-fakes.js';
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

const fakes = { generator: new ScriptedGenerator(), analyzer: new PatternAnalyzer(), decidePolicy: simplePolicy };
const recording = (b: TestBed) => ({ local: new RecordingExecutor(redis!, b.config.pyexec.redis.prefix) });

/** A test bed whose in-process fleet runs `stages` (with the fakes); the rest run in processes. */
async function setUp(stages: ('generation' | 'analysis' | 'approval' | 'execution' | 'result')[], pyexec = {}) {
  bed = await testBed({
    pyexec: { lock_duration_ms: 1500, stalled_interval_ms: 1000, sweep_interval_ms: 1000, ...pyexec },
  });
  redis = new Redis(bed.redisUrl);
  if (stages.length > 0) await bed.startFleet({ stages, ...fakes, executors: recording(bed) });
  return bed;
}

async function spawn(b: TestBed, stages: FleetProcess['stages'], env: Record<string, string> = {}) {
  const p = await spawnFleetProcess(b.config, b.redisUrl, stages, env);
  processes.push(p);
  return p;
}

const runs = async (b: TestBed, requestId: string) =>
  Number((await redis!.hget(executionsKey(b.config.pyexec.redis.prefix), requestId)) ?? 0);

const started = (b: TestBed, requestId: string, n = 1) =>
  eventually(async () => ((await runs(b, requestId)) >= n ? true : undefined), 30_000, `run ${n} to start`);

async function finished(b: TestBed, requestId: string, timeoutMs = 60_000) {
  const res = await b.client.wait(requestId, { timeoutMs });
  assert.equal(res.kind, 'finished', `the request did not end: ${JSON.stringify(res)}`);
  return res.kind === 'finished' ? res.response : (undefined as never);
}

/** The `finished` events on the request's stream: exactly one for a request that ended once. */
async function finishedEvents(b: TestBed, requestId: string): Promise<number> {
  const entries = (await redis!.xrange(b.client.store.eventsKey(requestId), '-', '+')) as [string, string[]][];
  return entries.filter(([, f]) => f[f.indexOf('type') + 1] === 'finished').length;
}

const jobState = async (b: TestBed, id: string) => (await b.fleets[0]!.queues.execution.getJob(id))?.getState();

describe('the end of a request', () => {
  it('survives a result worker killed inside the finish step: the request ends, once', async () => {
    const b = await setUp(['generation', 'analysis', 'approval', 'execution']);
    const dying = await spawn(b, ['result'], { PYEXEC_TEST_FAULT: 'result:ended' });
    const { requestId } = await b.client.submit(sampleRequest({ task_objective: 'ok' }));
    assert.equal(await dying.exited, 'SIGKILL', 'the result worker was killed inside the finish step');
    await spawn(b, ['result']);
    const r = await finished(b, requestId);
    assert.equal(r.status, 'succeeded');
    assert.deepEqual(r.results, { attempt: 1, mode: 'read_only' });
    assert.equal(await finishedEvents(b, requestId), 1, 'ended once');
    // The re-delivered result job found the end recorded and did not record it again.
    // Read again once completed: a job read while it was still active carries no return value.
    const result = b.fleets[0]!.queues.result;
    const job = await eventually(async () =>
      (await result.getJobState(`${requestId}-result-1`)) === 'completed'
        ? result.getJob(`${requestId}-result-1`)
        : undefined,
    );
    assert.equal(job!.returnvalue, 'already_ended');
  });

  it('completes a record left half-done (terminal set, no response) when its result job runs', async () => {
    const b = await setUp([]);
    const { requestId } = await b.client.submit(sampleRequest({ task_objective: 'ok' }));
    // What a result worker killed between the two writes of the old two-step finish left behind.
    await redis!.hset(b.client.store.key(requestId), 'terminal', 'succeeded');
    await b.startFleet({ ...fakes, executors: recording(b) });
    const r = await finished(b, requestId);
    assert.equal(r.status, 'succeeded');
    assert.equal(await finishedEvents(b, requestId), 1);
  });

  it('ends a request in one step, and a second end changes nothing', async () => {
    const b = await setUp([]);
    const { requestId } = await b.client.submit(sampleRequest());
    const store = b.client.store;
    assert.equal(await store.end(requestId, 'failed', { first: true }, 60), 'recorded');
    assert.equal(await store.end(requestId, 'succeeded', { second: true }, 60), 'already_ended');
    const snap = await store.get(requestId);
    assert.equal(snap?.status, 'failed');
    assert.deepEqual(snap?.response, { first: true });
    assert.equal(await finishedEvents(b, requestId), 1);
    await store.setStatus(requestId, 'executing');
    assert.equal((await store.get(requestId))?.status, 'failed', 'no status change after the end');
    assert.equal(await store.end('00000000-0000-4000-8000-000000000000', 'failed', {}, 60), 'missing');
  });

  it('starts a stage in one step: ended, cancelled (where the stage honours it) or started', async () => {
    const b = await setUp([]);
    const store = b.client.store;
    const statusEvents = async (id: string) =>
      ((await redis!.xrange(store.eventsKey(id), '-', '+')) as [string, string[]][]).filter(
        ([, f]) => f[f.indexOf('type') + 1] === 'status',
      ).length;
    const data = { stage: 'analysis', attempt: 1 };

    const open = (await b.client.submit(sampleRequest())).requestId;
    const before = await statusEvents(open);
    assert.equal(await store.beginStage(open, 'analyzing', data, true), 'started');
    assert.equal((await store.get(open))?.status, 'analyzing');
    assert.equal(await statusEvents(open), before + 1, 'one status event');

    const cancelled = (await b.client.submit(sampleRequest())).requestId;
    await store.requestCancel(cancelled);
    assert.equal(await store.beginStage(cancelled, 'analyzing', data, true), 'cancel');
    assert.notEqual((await store.get(cancelled))?.status, 'analyzing', 'no status set for a cancelled request');
    // The result stage records what is already decided: it does not act on the cancel.
    assert.equal(await store.beginStage(cancelled, 'finishing', data, false), 'started');

    const ended = (await b.client.submit(sampleRequest())).requestId;
    await store.end(ended, 'failed', { first: true }, 60);
    await store.requestCancel(ended);
    assert.equal(await store.beginStage(ended, 'executing', data, true), 'ended');
    assert.equal((await store.get(ended))?.status, 'failed');

    const missing = '00000000-0000-4000-8000-000000000000';
    assert.equal(await store.beginStage(missing, 'executing', data, true), 'started');
    assert.equal(await redis!.exists(store.key(missing)), 0, 'no record made for a request that has none');
  });
});

describe('the reaper', () => {
  it('settles, at the next process start-up, the jobs failed while no process was listening', async () => {
    // The periodic sweep is slow here: the start-up sweep of the new process must do it.
    const b = await setUp(['generation', 'analysis', 'approval', 'result'], { sweep_interval_ms: 120_000 });
    const e1 = await spawn(b, ['execution']);
    const e2 = await spawn(b, ['execution']);
    const write = (await b.client.submit(sampleRequest({ task_objective: 'write sleep:60000' }))).requestId;
    const read = (await b.client.submit(sampleRequest({ task_objective: 'ok sleep-once:60000' }))).requestId;
    await started(b, write);
    await started(b, read);
    // Every execution process dies while code runs.
    e1.child.kill('SIGKILL');
    e2.child.kill('SIGKILL');
    await Promise.all([e1.exited, e2.exited]);
    // BullMQ's stall check fails both jobs, in a worker that is no fleet process: nobody settles them.
    const prefix = keyPrefix(b.config.pyexec.redis.prefix);
    const connection = new Redis(b.redisUrl, { maxRetriesPerRequest: null });
    const bare = new Worker('execution', async () => assert.fail('a stalled execution must not run again'), {
      connection,
      prefix,
      lockDuration: 1500,
      stalledInterval: 500,
      maxStalledCount: 0,
    });
    await eventually(async () =>
      (await jobState(b, `${write}-execution-1`)) === 'failed' &&
      (await jobState(b, `${read}-execution-1`)) === 'failed'
        ? true
        : undefined,
    );
    await bare.close();
    connection.disconnect();
    assert.equal((await b.client.status(write))?.status, 'executing', 'the write is open, and nobody is listening');
    await spawn(b, ['execution']);
    const w = await finished(b, write, 20_000);
    assert.equal(w.status, 'failed');
    assert.equal(w.detail, 'needs_review');
    assert.match(w.reason ?? '', /may write to EPICS/);
    assert.equal(await runs(b, write), 1, 'the write ran once');
    const r = await finished(b, read, 20_000);
    assert.equal(r.status, 'succeeded', 'read-only code is run again');
    assert.equal(await runs(b, read), 2);
    assert.equal(await jobState(b, `${read}-execution-1-r1`), 'completed');
  });

  it('acts later when the process that decided was killed before it acted', async () => {
    const b = await setUp(['generation', 'analysis', 'approval', 'result']);
    const e0 = await spawn(b, ['execution']);
    const { requestId } = await b.client.submit(sampleRequest({ task_objective: 'ok sleep-once:60000' }));
    await started(b, requestId);
    e0.child.kill('SIGKILL');
    // This process fails the stalled job, decides to run it again, and is killed right there.
    const deciding = await spawn(b, ['execution'], { PYEXEC_TEST_FAULT: 'reaper:decided' });
    assert.equal(await deciding.exited, 'SIGKILL');
    assert.equal(await jobState(b, `${requestId}-execution-1`), 'failed');
    // The in-process fleet's periodic sweep acts; a new execution process runs the requeued job.
    await spawn(b, ['execution']);
    const r = await finished(b, requestId);
    assert.equal(r.status, 'succeeded');
    assert.equal(await runs(b, requestId), 2);
    assert.equal(await finishedEvents(b, requestId), 1);
  });

  it('fails a read-only execution stopped three times as infrastructure, not as needs_review', async () => {
    const b = await setUp(['generation', 'analysis', 'approval', 'result']);
    const { requestId } = await b.client.submit(sampleRequest({ task_objective: 'ok sleep:60000' }));
    for (let n = 1; n <= 3; n++) {
      const e = await spawn(b, ['execution']);
      await started(b, requestId, n);
      e.child.kill('SIGKILL');
      await e.exited;
    }
    // A worker is needed for the stall check of the last run; it must not run the code a fourth time.
    await spawn(b, ['execution']);
    const r = await finished(b, requestId);
    assert.equal(r.status, 'failed');
    assert.equal(r.detail, 'infrastructure');
    assert.doesNotMatch(r.reason ?? '', /EPICS/);
    assert.match(r.reason ?? '', /read_only execution stopped 3 times/);
    assert.equal(await runs(b, requestId), 3);
  });
});

describe('submit', () => {
  it('leaves the thread id free when the request cannot be serialised', async () => {
    const b = await setUp(['generation', 'analysis', 'approval', 'execution', 'result']);
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    for (const bad of [{ cyclic }, { n: 1n }]) {
      await assert.rejects(
        b.client.submit(sampleRequest({ thread_id: 'agent-7', capability_context_data: bad })),
        InvalidRequestError,
      );
    }
    assert.equal(await b.client.byThread('agent-7'), null, 'nothing written for the refused request');
    const ok = await b.client.submit(sampleRequest({ thread_id: 'agent-7' }));
    assert.equal(ok.created, true);
    assert.equal((await finished(b, ok.requestId)).status, 'succeeded');
  });

  it('writes nothing for 20 MB or 200,000 keys, with a typed error', async () => {
    const b = await setUp([]);
    const mine = async () => (await redis!.keys(`*${b.config.pyexec.redis.prefix}*`)).length;
    const keysBefore = await mine();
    await assert.rejects(
      b.client.submit(sampleRequest({ thread_id: 'big', capability_context_data: { blob: 'x'.repeat(20 << 20) } })),
      RequestTooLargeError,
    );
    const many = Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [`k${i}`, i]));
    await assert.rejects(
      b.client.submit(sampleRequest({ thread_id: 'big', capability_context_data: many })),
      RequestTooLargeError,
    );
    assert.equal(await mine(), keysBefore);
  });

  it('runs a different request on a used thread id, and returns the existing one for the same request', async () => {
    const b = await setUp(['generation', 'analysis', 'approval', 'execution', 'result']);
    const thread = 'stage1_preprocessing';
    const first = await b.client.submit(sampleRequest({ thread_id: thread, task_objective: 'ok first' }));
    assert.equal((await finished(b, first.requestId)).status, 'succeeded');
    const second = await b.client.submit(sampleRequest({ thread_id: thread, task_objective: 'ok second' }));
    assert.equal(second.created, true, 'a new request on a used thread is a new request');
    assert.notEqual(second.requestId, first.requestId);
    assert.equal(await b.client.byThread(thread), second.requestId, 'the thread names its latest request');
    const again = await b.client.submit(sampleRequest({ task_objective: 'ok second', thread_id: thread }));
    assert.deepEqual(again, { ...second, created: false }, 'the same request on the thread is the existing one');
    const r = await finished(b, second.requestId);
    assert.equal(r.status, 'succeeded');
    assert.match(r.generated_code ?? '', /ok second/);
    assert.equal(await runs(b, second.requestId), 1);
    const resumed = await b.client.resume(thread, { timeoutMs: 5000 });
    assert.equal(resumed.kind === 'finished' && resumed.response.request_id, second.requestId);
  });

  it("ends a request whose data the runtime cannot decode with the request's own error, without retries", async () => {
    const b = await setUp([]);
    const { requestId } = await b.client.submit(sampleRequest());
    // Data that another client, or one with other limits, might send: nested past Python's decoder.
    let deep: unknown = 1;
    for (let i = 0; i < 1500; i++) deep = { d: deep };
    const queue = new Queue('generation', { connection: redis!, prefix: keyPrefix(b.config.pyexec.redis.prefix) });
    const id = `${requestId}-generation-1`;
    const job = await queue.getJob(id);
    assert.ok(job);
    await job.remove();
    await queue.add(
      'generation',
      { ...job.data, request: { ...job.data.request, capability_context_data: { deep } } },
      { jobId: id },
    );
    await queue.close();
    await b.startFleet();
    const r = await finished(b, requestId);
    assert.equal(r.status, 'failed');
    assert.equal(r.detail, 'invalid_input');
    assert.match(r.reason ?? '', /cannot be decoded/);
    assert.equal(r.error_chain.at(-1)?.kind, 'invalid_input');
    assert.equal(r.error_chain.filter((e) => e.stage === 'execution').length, 1, 'not retried');
  });
});
