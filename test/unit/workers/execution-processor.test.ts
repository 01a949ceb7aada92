/**
 * The execution stage (createExecutionProcessor) with in-memory fakes and a scripted executor:
 * the approval binding checked before anything runs, success to `succeeded`, runtime errors back to
 * generation within max_execution_retries, refusals to `rejected`, an unavailable executor retried
 * unless write-capable code may have started (then `needs_review`), and a producer's cancel.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { PolicyDecision } from '../../../src/analysis/policy.js';
import { ExecutorUnavailableError } from '../../../src/errors.js';
import { GenerationJob } from '../../../src/queues/generation.js';
import { ResultJob } from '../../../src/queues/result.js';
import { createExecutionProcessor } from '../../../src/workers/execution-worker.js';
import {
  analysisRecord,
  approvalRecord,
  counted,
  type ExecutorReply,
  executionJobData,
  fakeJob,
  outcomes,
  REQUEST_ID,
  ScriptedExecutor,
  type StageWorld,
  stageWorld,
  WRITES_HELD,
} from '../../support/stage-fakes.js';

const READ = "from epics import caget\nresults = {'current': caget('SR:CURRENT')}";
const WRITE = "from epics import caput\ncaput('SR:SETPOINT', 1.0)\nresults = {}";
const READ_ANALYSIS = analysisRecord();
const WRITE_ANALYSIS = analysisRecord({
  hasWrites: true,
  risk: 'high',
  mode: 'write_access',
  approvalRequired: true,
  approvalReason: 'Code contains control system write operations',
});

const worlds: StageWorld[] = [];
afterEach(() => {
  for (const w of worlds.splice(0)) w.close();
});

function setup(
  replies: ExecutorReply[],
  options: { doc?: Record<string, unknown>; recheck?: (code: string) => Promise<PolicyDecision> } = {},
) {
  const world = stageWorld({ ...WRITES_HELD, ...options.doc });
  worlds.push(world);
  const executor = new ScriptedExecutor(replies);
  const processor = createExecutionProcessor({
    ...world.deps,
    executors: { container: executor },
    ...(options.recheck ? { recheck: options.recheck } : {}),
  });
  return { world, executor, processor, queues: world.queues, store: world.store };
}

/** An approved write job (the approval binds this code and analysis). */
const approvedWrite = (world: StageWorld, approval: Partial<Parameters<typeof approvalRecord>[2]> = {}) =>
  executionJobData(world, WRITE, WRITE_ANALYSIS, {
    approval: approvalRecord(WRITE, WRITE_ANALYSIS, approval),
  });

/** A run that lasts until its signal aborts, then fails with `error()` (as executors do). */
const untilAborted = (signal: AbortSignal, error: () => unknown) =>
  new Promise<never>((_resolve, reject) => {
    if (signal.aborted) return reject(error());
    signal.addEventListener('abort', () => reject(error()), { once: true });
  });

/** Resolves once the executor has been handed the task (the code is running). */
async function startedRun(executor: ScriptedExecutor): Promise<void> {
  while (executor.tasks.length === 0) await new Promise((r) => setTimeout(r, 1));
}

const result = (world: StageWorld) => {
  const end = world.queues.only();
  assert.equal(end.stage, 'result');
  assert.equal(end.id, `${REQUEST_ID}-result-1`);
  return ResultJob.parse(end.data);
};

describe('execution stage: the approval binding', () => {
  const cases: [string, (world: StageWorld) => unknown, RegExp][] = [
    [
      'approval required, none carried',
      (w) => executionJobData(w, WRITE, WRITE_ANALYSIS),
      /approval is required but the job carries no approval/,
    ],
    [
      'approval of other code',
      (w) => approvedWrite(w, { codeSha256: 'f'.repeat(64) }),
      /differs from the code that was approved/,
    ],
    [
      'approval of another analysis',
      (w) => approvedWrite(w, { analysisSha256: 'e'.repeat(64) }),
      /analysis differs from the analysis the approver saw/,
    ],
    ['approval for another mode', (w) => approvedWrite(w, { mode: 'read_only' }), /approved for read_only/],
    [
      'a rejection carried as the approval',
      (w) => approvedWrite(w, { decision: 'rejected', reason: 'no' }),
      /carries no approval/,
    ],
    [
      'code changed after generation',
      (w) => ({ ...executionJobData(w, READ, READ_ANALYSIS), code: `${READ}\nimport os` }),
      /does not match the sha256 recorded at generation/,
    ],
  ];
  for (const [name, data, reason] of cases) {
    it(`rejects before running: ${name}`, async () => {
      const { world, processor, executor } = setup([outcomes.ok()]);
      assert.equal(await processor(fakeJob(data(world))), 'refused');
      assert.equal(executor.tasks.length, 0, 'nothing ran');
      const env = result(world);
      assert.equal(env.outcome.status, 'rejected');
      assert.equal(env.outcome.detail, 'approval_mismatch');
      assert.match(env.outcome.reason!, reason);
      assert.equal(env.errorChain.at(-1)?.kind, 'safety');
    });
  }

  it('rejects a job whose analysis claims read-only for code the recheck finds writing', async () => {
    const recheck = async (): Promise<PolicyDecision> => ({
      mode: 'write_access',
      approvalRequired: true,
      approvalReason: 'Code contains control system write operations',
    });
    const { world, processor, executor } = setup([outcomes.ok()], { recheck });
    // Forged: write code, analysis record of read-only code that needs no approval.
    await processor(fakeJob(executionJobData(world, WRITE, READ_ANALYSIS)));
    assert.equal(executor.tasks.length, 0);
    assert.match(result(world).outcome.reason!, /needs write_access, but the job was analysed as read_only/);
  });

  it('rejects a job that skipped the hold the recheck requires', async () => {
    const recheck = async (): Promise<PolicyDecision> => ({
      mode: 'read_only',
      approvalRequired: true,
      approvalReason: 'All code requires approval',
    });
    const { world, processor, executor } = setup([outcomes.ok()], { recheck });
    await processor(fakeJob(executionJobData(world, READ, READ_ANALYSIS)));
    assert.equal(executor.tasks.length, 0);
    assert.match(result(world).outcome.reason!, /requires approval for this code, but the job skipped the hold/);
  });
});

describe('execution stage: outcomes', () => {
  it('runs approved write code in write_access and ends the request succeeded with the run record', async () => {
    const { world, processor, executor, store } = setup([outcomes.ok({ done: true }, 'wrote it\n')]);
    const data = approvedWrite(world, { payload: { limit: 2 } });
    assert.equal(await processor(fakeJob(data, { id: `${REQUEST_ID}-execution-1` })), 'ok');
    assert.equal(executor.tasks.length, 1);
    const task = executor.tasks[0]!;
    assert.equal(task.mode, 'write_access');
    assert.equal(task.code, WRITE);
    assert.equal(task.timeoutMs, 600_000);
    assert.deepEqual(task.approvalPayload, { limit: 2 });
    assert.equal(task.executionFolder, data.executionFolder);
    // The run's files are in the request's folder.
    assert.equal(await readFile(path.join(data.executionFolder, 'code.py'), 'utf8'), WRITE);
    assert.deepEqual(JSON.parse(await readFile(path.join(data.executionFolder, 'approval_payload.json'), 'utf8')), {
      limit: 2,
    });
    const env = result(world);
    assert.deepEqual(env.outcome, { status: 'succeeded' });
    assert.deepEqual(env.execution?.results, { done: true });
    assert.equal(env.execution?.stdout, 'wrote it\n');
    assert.equal(env.execution?.method, 'container');
    assert.equal(env.execution?.mode, 'write_access');
    assert.deepEqual(
      env.timings.map((t) => [t.stage, t.outcome]),
      [['execution', 'ok']],
    );
    assert.deepEqual(
      store.statuses.map((s) => s.status),
      ['executing'],
    );
  });

  it('runs read-only code that needs no approval without one', async () => {
    const { world, processor, executor } = setup([outcomes.ok()]);
    assert.equal(await processor(fakeJob(executionJobData(world, READ, READ_ANALYSIS))), 'ok');
    assert.equal(executor.tasks[0]!.mode, 'read_only');
    assert.equal(result(world).outcome.status, 'succeeded');
  });

  it('streams live output to the store and reports progress on the job', async () => {
    const { world, processor, store } = setup([
      (task) => {
        task.onOutput?.({ kind: 'stdout', text: 'line 1\n' });
        task.onOutput?.({ kind: 'stderr', text: 'warn\n' });
        return outcomes.ok();
      },
    ]);
    const job = fakeJob(executionJobData(world, READ, READ_ANALYSIS));
    await processor(job);
    assert.deepEqual(
      store.output.flatMap((o) => o.events.map((e) => [e.type, JSON.parse(e.data).text])),
      [
        ['stdout', 'line 1\n'],
        ['stderr', 'warn\n'],
      ],
    );
    assert.ok(job.progress.length > 0, 'progress reported');
  });

  it('with live output off, the executor gets no output callback and the store no output', async () => {
    const { world, processor, executor, store } = setup([outcomes.ok()], {
      doc: { pyexec: { live_output: { enabled: false } } },
    });
    await processor(fakeJob(executionJobData(world, READ, READ_ANALYSIS)));
    assert.equal(executor.tasks[0]!.onOutput, undefined);
    assert.equal(store.output.length, 0);
    assert.equal(result(world).outcome.status, 'succeeded');
  });

  it('sends a runtime error back to generation with its traceback, counting it against max_execution_retries', async () => {
    const { world, processor, queues } = setup([outcomes.codeError()]);
    assert.equal(await processor(fakeJob(executionJobData(world, READ, READ_ANALYSIS))), 'regenerated');
    const retry = queues.only();
    assert.equal(retry.stage, 'generation');
    assert.equal(retry.id, `${REQUEST_ID}-generation-2`);
    const env = GenerationJob.parse(retry.data);
    assert.equal(env.attempt, 2);
    assert.equal(env.executionFailures, 1);
    assert.equal(env.generationFailures, 0);
    const err = env.errorChain.at(-1)!;
    assert.deepEqual([err.stage, err.errorType, err.kind, err.failedCode], ['execution', 'runtime', 'code', READ]);
    assert.match(err.traceback!, /Traceback/);
    assert.equal(await counted(world.metrics.retries, { stage: 'execution', error_class: 'code' }), 1);
  });

  it('ends the request failed with execution_retries_exhausted when the execution budget is spent', async () => {
    const { world, processor, queues } = setup([outcomes.codeError()], {
      doc: { python_executor: { max_execution_retries: 1 } },
    });
    await processor(fakeJob(executionJobData(world, READ, READ_ANALYSIS, { attempt: 2, executionFailures: 1 })));
    const end = queues.only();
    assert.equal(end.id, `${REQUEST_ID}-result-2`);
    const env = ResultJob.parse(end.data);
    assert.equal(env.outcome.status, 'failed');
    assert.equal(env.outcome.detail, 'execution_retries_exhausted');
    assert.match(env.outcome.reason!, /max_execution_retries: 1.*NameError/);
  });

  it('a refusal at run time (limits) ends the request rejected, never regenerated', async () => {
    const { world, processor } = setup([outcomes.refused()]);
    assert.equal(await processor(fakeJob(approvedWrite(world))), 'refused');
    const env = result(world);
    assert.deepEqual(env.outcome, {
      status: 'rejected',
      reason: 'limits violation: SR:SETPOINT above 10',
      detail: 'limits_violation',
    });
    assert.equal(env.errorChain.at(-1)?.failedCode, WRITE);
  });
});

describe('execution stage: an unavailable executor and cancellation', () => {
  it('retries in this stage when no kernel could be had (nothing started)', async () => {
    const { world, processor, queues } = setup([new ExecutorUnavailableError('no kernel within 30 s')]);
    await assert.rejects(processor(fakeJob(approvedWrite(world), { attemptsMade: 0, attempts: 3 })), {
      name: 'ExecutorUnavailableError',
    });
    assert.equal(queues.added.length, 0);
  });

  it('never re-runs write-capable code that may have started: failed, needs_review, on the first attempt', async () => {
    const { world, processor } = setup([new ExecutorUnavailableError('kernel died', { started: true })]);
    const out = await processor(fakeJob(approvedWrite(world), { attemptsMade: 0, attempts: 3 }));
    assert.equal(out, 'needs_review');
    const env = result(world);
    assert.equal(env.outcome.status, 'failed');
    assert.equal(env.outcome.detail, 'needs_review');
    assert.match(env.outcome.reason!, /may have written to EPICS/);
    assert.deepEqual(
      env.errorChain.map((e) => [e.errorType, e.kind]),
      [['interrupted', 'infrastructure']],
    );
  });

  it('retries read-only code whose run was cut short (started), as it cannot have written', async () => {
    const { world, processor, queues } = setup([new ExecutorUnavailableError('kernel died', { started: true })]);
    await assert.rejects(processor(fakeJob(executionJobData(world, READ, READ_ANALYSIS), { attempts: 3 })), {
      name: 'ExecutorUnavailableError',
    });
    assert.equal(queues.added.length, 0);
  });

  it('ends the request failed when the executor is still unavailable on the last attempt', async () => {
    const { world, processor } = setup([new ExecutorUnavailableError('no kernel within 30 s')]);
    const out = await processor(fakeJob(approvedWrite(world), { attemptsMade: 2, attempts: 3 }));
    assert.equal(out, 'failed');
    const env = result(world);
    assert.equal(env.outcome.detail, 'infrastructure');
    assert.match(env.outcome.reason!, /execution: infrastructure unavailable after 3 attempts/);
  });

  it('a worker without an executor for the method treats it as unavailable', async () => {
    const { world, processor } = setup([outcomes.ok()]);
    const data = { ...executionJobData(world, READ, READ_ANALYSIS), executionMethod: 'local' as const };
    await assert.rejects(processor(fakeJob(data, { attempts: 2 })), /no executor for method 'local'/);
    assert.equal(await processor(fakeJob(data, { attemptsMade: 1, attempts: 2 })), 'failed');
    assert.match(result(world).outcome.reason!, /no executor for method 'local'/);
  });

  it("a producer's cancel during the run (signal aborted) ends the request cancelled", async () => {
    const { world, processor, store, executor } = setup([(_task, signal) => untilAborted(signal, () => signal.reason)]);
    const controller = new AbortController();
    const running = processor(fakeJob(approvedWrite(world)), undefined, controller.signal);
    await startedRun(executor);
    store.requestCancel(REQUEST_ID);
    controller.abort(new Error('cancelled'));
    assert.equal(await running, 'cancelled');
    const env = result(world);
    assert.deepEqual(env.outcome, { status: 'cancelled', reason: 'cancelled by the producer during execution' });
  });

  it('an abort that is not a cancel (the lock was lost) is not reported as cancelled', async () => {
    const { world, processor, queues, executor } = setup([
      (_task, signal) =>
        untilAborted(signal, () => new ExecutorUnavailableError('interrupted: lock lost', { started: false })),
    ]);
    const controller = new AbortController();
    const running = processor(
      fakeJob(executionJobData(world, READ, READ_ANALYSIS), { attempts: 3 }),
      undefined,
      controller.signal,
    );
    await startedRun(executor);
    controller.abort(new Error('lock lost'));
    await assert.rejects(running, /lock lost/);
    assert.equal(queues.added.length, 0);
  });

  it('a request cancelled before the job ran is ended cancelled without running anything', async () => {
    const { world, processor, executor, store } = setup([outcomes.ok()]);
    store.requestCancel(REQUEST_ID);
    assert.equal(await processor(fakeJob(approvedWrite(world))), 'cancelled');
    assert.equal(executor.tasks.length, 0);
    assert.deepEqual(result(world).outcome, { status: 'cancelled', reason: 'cancelled by the producer' });
    assert.equal(store.statuses.length, 0, 'not even marked executing');
  });
});
