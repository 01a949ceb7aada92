/**
 * The frame every stage runs in (stage-runtime.ts runStage, handoff, endRequest) and the hand-offs
 * between the stages, with in-memory fakes: an ended request gets no more work, a cancelled one
 * ends `cancelled` at its next stage, a hand-off repeated after a crash adds nothing twice (the
 * deterministic job id), the first terminal decision of an attempt stands, and a whole request runs
 * through all five processors.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { type Processor, UnrecoverableError } from 'bullmq';
import type { ApprovalJobInput } from '../../../src/queues/approval.js';
import type { Stage } from '../../../src/queues/envelope.js';
import { PythonExecutionResponse, ResultJob } from '../../../src/queues/result.js';
import { createAnalysisProcessor } from '../../../src/workers/analysis-worker.js';
import { createApprovalProcessor } from '../../../src/workers/approval-worker.js';
import { createExecutionProcessor } from '../../../src/workers/execution-worker.js';
import { createGenerationProcessor } from '../../../src/workers/generation-worker.js';
import { createResultProcessor } from '../../../src/workers/result-worker.js';
import { endRequest } from '../../../src/workers/stage-runtime.js';
import {
  analysisJobData,
  analysisRecord,
  approvalRecord,
  decidePolicy,
  type ExecutorReply,
  executionJobData,
  FakeApprovals,
  fakeJob,
  type GeneratorReply,
  generationJobData,
  MarkerAnalyzer,
  outcomes,
  REQUEST_ID,
  ScriptedCodeGenerator,
  ScriptedExecutor,
  type StageWorld,
  stageWorld,
  takeJob,
  WRITES_HELD,
} from '../../support/stage-fakes.js';

const READ = "from epics import caget\nresults = {'current': caget('SR:CURRENT')}";
const WRITE = "from epics import caput\ncaput('SR:SETPOINT', 1.0)\nresults = {}";

const worlds: StageWorld[] = [];
afterEach(() => {
  for (const w of worlds.splice(0)) w.close();
});

/** All five processors over one world, with scripted plug-ins. */
function fleet(
  options: {
    doc?: Record<string, unknown>;
    code?: GeneratorReply[];
    runs?: ExecutorReply[];
    decision?: 'approved' | 'rejected';
  } = {},
) {
  const world = stageWorld(options.doc ?? WRITES_HELD);
  worlds.push(world);
  const generator = new ScriptedCodeGenerator(options.code ?? [READ]);
  const analyzer = new MarkerAnalyzer();
  const executor = new ScriptedExecutor(options.runs ?? [outcomes.ok()]);
  const approvals = new FakeApprovals((held) =>
    approvalRecord(WRITE, analysisRecord(), {
      holdJobId: held.holdJobId,
      decision: options.decision ?? 'approved',
      codeSha256: held.codeSha256,
      analysisSha256: held.analysisSha256,
      mode: held.mode,
      ...(options.decision === 'rejected' ? { reason: 'no' } : {}),
    }),
  );
  const processors: Record<Stage, Processor> = {
    generation: createGenerationProcessor({ ...world.deps, generator }),
    analysis: createAnalysisProcessor({ ...world.deps, analyzer, decidePolicy }),
    approval: createApprovalProcessor({ ...world.deps, approvals: approvals.service }),
    execution: createExecutionProcessor({ ...world.deps, executors: { container: executor } }),
    result: createResultProcessor(world.deps),
  };
  return { world, generator, analyzer, executor, approvals, processors };
}

/** A job for each stage, valid for its schema. */
function jobFor(stage: Stage, world: StageWorld): unknown {
  const analysis = analysisRecord();
  switch (stage) {
    case 'generation':
      return generationJobData();
    case 'analysis':
      return analysisJobData(world, READ);
    case 'approval':
      return { ...analysisJobData(world, READ), analysis, deadline: Date.now() } satisfies ApprovalJobInput;
    case 'execution':
      return executionJobData(world, READ, analysis);
    case 'result':
      return { ...executionJobData(world, READ, analysis), outcome: { status: 'succeeded' } };
  }
}

const STAGE_LIST: Stage[] = ['generation', 'analysis', 'approval', 'execution', 'result'];

describe('stage frame', () => {
  for (const stage of STAGE_LIST) {
    it(`${stage}: a request that has ended gets no more work (already_ended, nothing added or run)`, async () => {
      const f = fleet();
      await f.world.store.end(REQUEST_ID, 'failed', { status: 'failed' }, 60);
      const endCalls = f.world.store.endCalls.length;
      assert.equal(await f.processors[stage](fakeJob(jobFor(stage, f.world))), 'already_ended');
      assert.equal(f.world.queues.added.length, 0);
      assert.equal(f.world.store.statuses.length, 0);
      assert.equal(f.world.store.endCalls.length, endCalls);
      assert.equal(f.generator.calls.length + f.analyzer.analyzed.length + f.executor.tasks.length, 0);
      assert.equal(f.approvals.settled.length, 0);
    });
  }

  for (const stage of ['generation', 'analysis', 'approval', 'execution'] as const) {
    it(`${stage}: a request the producer cancelled ends cancelled there, before any work`, async () => {
      const f = fleet();
      f.world.store.requestCancel(REQUEST_ID);
      const data = { ...(jobFor(stage, f.world) as object), attempt: 2 };
      assert.equal(await f.processors[stage](fakeJob(data)), 'cancelled');
      const end = f.world.queues.only();
      assert.equal(end.stage, 'result');
      assert.equal(end.id, `${REQUEST_ID}-result-2`);
      const env = ResultJob.parse(end.data);
      assert.deepEqual(env.outcome, { status: 'cancelled', reason: 'cancelled by the producer' });
      assert.deepEqual(
        env.timings.map((t) => [t.stage, t.outcome]),
        [[stage, 'cancelled']],
      );
      assert.equal(f.generator.calls.length + f.analyzer.analyzed.length + f.executor.tasks.length, 0);
      assert.equal(f.approvals.settled.length, 0);
      assert.equal(f.world.store.statuses.length, 0);
    });
  }

  it('each stage shows its working status with the attempt', async () => {
    const f = fleet();
    for (const stage of STAGE_LIST) await f.processors[stage](fakeJob(jobFor(stage, f.world)));
    assert.deepEqual(
      f.world.store.statuses
        .filter((s) => s.data?.['stage'])
        .map((s) => [s.status, s.data?.['stage'], s.data?.['attempt']]),
      [
        ['generating', 'generation', 1],
        ['analyzing', 'analysis', 1],
        ['awaiting_approval', 'approval', 1],
        ['executing', 'execution', 1],
        ['finishing', 'result', 1],
      ],
    );
  });
});

describe('hand-offs after a crash', () => {
  // A worker that dies after adding the next job (FaultPoint handoff:<stage>) has its job run again.
  const cases: [string, Stage, Stage, (f: ReturnType<typeof fleet>) => unknown][] = [
    ['generation → analysis', 'generation', 'analysis', () => generationJobData()],
    ['analysis → execution', 'analysis', 'execution', (f) => analysisJobData(f.world, READ)],
    ['analysis → approval hold', 'analysis', 'approval', (f) => analysisJobData(f.world, WRITE)],
    [
      'approval → execution',
      'approval',
      'execution',
      (f) => ({ ...analysisJobData(f.world, WRITE), analysis: analysisRecord(), deadline: Date.now() }),
    ],
    ['execution → result', 'execution', 'result', (f) => executionJobData(f.world, READ, analysisRecord())],
  ];
  for (const [name, stage, next, data] of cases) {
    it(`${name}: the job run again adds nothing twice`, async () => {
      const f = fleet();
      let crash = true;
      // The worker stops right after the add: an UnrecoverableError passes through the frame
      // untouched (no error mapping, no end), as a killed process would leave the job.
      const crashing = {
        ...f.world.deps,
        fault: (p: string) => {
          if (crash && p === `handoff:${next}`) throw new UnrecoverableError(`killed at ${p}`);
        },
      };
      const first = {
        generation: () => createGenerationProcessor({ ...crashing, generator: f.generator }),
        analysis: () => createAnalysisProcessor({ ...crashing, analyzer: f.analyzer, decidePolicy }),
        approval: () => createApprovalProcessor({ ...crashing, approvals: f.approvals.service }),
        execution: () => createExecutionProcessor({ ...crashing, executors: { container: f.executor } }),
        result: () => createResultProcessor(crashing),
      }[stage]();
      const job = fakeJob(data(f), { attempts: 1 });
      await assert.rejects(first(job), /killed at handoff/);
      crash = false;
      // BullMQ runs the job again (stalled): the same decision, the same job id, ignored.
      await first(fakeJob(structuredClone(job.data), { attempts: 1 }));
      assert.deepEqual(
        f.world.queues.added.map((j) => [j.stage, j.id]),
        [[next, `${REQUEST_ID}-${next}-1`]],
      );
      assert.deepEqual(
        f.world.queues.ignored.map((j) => j.id),
        [`${REQUEST_ID}-${next}-1`],
      );
    });
  }

  it('the first terminal decision of an attempt stands: a later one for the same attempt is ignored', async () => {
    const f = fleet({ runs: [outcomes.refused()] });
    const data = executionJobData(f.world, READ, analysisRecord());
    await f.processors.execution(fakeJob(data));
    // Another road (say, the reaper) decides `failed` for the same attempt afterwards.
    await endRequest(f.world.deps, { env: data, stage: 'execution' }, { status: 'failed', reason: 'reaper' });
    assert.equal(f.world.queues.added.length, 1);
    assert.equal(ResultJob.parse(f.world.queues.only().data).outcome.status, 'rejected');
    assert.equal(f.world.queues.ignored.length, 1);
  });
});

describe('a whole request through the five processors', () => {
  /** Runs the first job, then every job the stages add, in order (each queue as a list). */
  async function run(f: ReturnType<typeof fleet>): Promise<Stage[]> {
    const seen: Stage[] = ['generation'];
    await f.processors.generation(fakeJob(generationJobData(), { id: `${REQUEST_ID}-generation-1` }));
    for (let i = 0; i < f.world.queues.added.length; i++) {
      const next = f.world.queues.added[i]!;
      seen.push(next.stage);
      await f.processors[next.stage](takeJob(next));
    }
    return seen;
  }

  it('write code: generated, analysed, held, approved, run, recorded succeeded', async () => {
    const f = fleet({ code: [WRITE], runs: [outcomes.ok({ wrote: 1 })] });
    assert.deepEqual(await run(f), ['generation', 'analysis', 'approval', 'execution', 'result']);
    const record = f.world.store.ended.get(REQUEST_ID)!;
    assert.equal(record.status, 'succeeded');
    const response = PythonExecutionResponse.parse(record.response);
    assert.deepEqual(response.results, { wrote: 1 });
    assert.equal(response.execution_mode, 'write_access');
    assert.equal(response.approval?.decision, 'approved');
    assert.deepEqual(
      response.timings.map((t) => [t.stage, t.outcome]),
      [
        ['generation', 'ok'],
        ['analysis', 'held'],
        ['approval', 'approved'],
        ['execution', 'ok'],
        ['result', 'succeeded'],
      ],
    );
    assert.equal(f.executor.tasks[0]?.mode, 'write_access');
    assert.equal(f.world.store.holds.has(REQUEST_ID), false);
  });

  it('write code an approver rejects never runs', async () => {
    const f = fleet({ code: [WRITE], decision: 'rejected' });
    assert.deepEqual(await run(f), ['generation', 'analysis', 'approval', 'result']);
    assert.equal(f.executor.tasks.length, 0);
    assert.equal(f.world.store.ended.get(REQUEST_ID)?.status, 'rejected');
  });

  it('a runtime error is regenerated with the error fed back, and the second attempt succeeds', async () => {
    const f = fleet({ code: [READ, `${READ}\nprint('fixed')`], runs: [outcomes.codeError(), outcomes.ok()] });
    assert.deepEqual(await run(f), [
      'generation',
      'analysis',
      'execution',
      'generation',
      'analysis',
      'execution',
      'result',
    ]);
    assert.deepEqual(
      f.world.queues.added.map((j) => j.id),
      [
        `${REQUEST_ID}-analysis-1`,
        `${REQUEST_ID}-execution-1`,
        `${REQUEST_ID}-generation-2`,
        `${REQUEST_ID}-analysis-2`,
        `${REQUEST_ID}-execution-2`,
        `${REQUEST_ID}-result-2`,
      ],
    );
    assert.equal(f.generator.calls[1]?.errorChain[0]?.errorType, 'runtime');
    const response = PythonExecutionResponse.parse(f.world.store.ended.get(REQUEST_ID)!.response);
    assert.equal(response.status, 'succeeded');
    assert.equal(response.generation_attempt, 2);
    assert.equal(response.error_chain.length, 1);
  });
});
