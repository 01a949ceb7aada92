/**
 * The analysis stage (createAnalysisProcessor) with in-memory fakes, a marker analyzer and the real
 * policy (src/analysis/policy.ts): clean code to execution, writes to the approval hold (a delayed
 * job whose delay is the deadline) or to `rejected` when writes are blocked, syntax errors back to
 * generation within the generation budget, corrupt jobs to `failed`.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { ApprovalJob } from '../../../src/queues/approval.js';
import { ExecutionJob } from '../../../src/queues/execution.js';
import { GenerationJob } from '../../../src/queues/generation.js';
import { ResultJob } from '../../../src/queues/result.js';
import { createAnalysisProcessor } from '../../../src/workers/analysis-worker.js';
import { sha256 } from '../../../src/workers/stage-runtime.js';
import {
  analysisJobData,
  counted,
  decidePolicy,
  fakeJob,
  MarkerAnalyzer,
  REQUEST_ID,
  type StageWorld,
  stageWorld,
  WRITES_HELD,
} from '../../support/stage-fakes.js';

const READ = "from epics import caget\nresults = {'current': caget('SR:CURRENT')}";
const WRITE = "from epics import caput\ncaput('SR:SETPOINT', 1.0)\nresults = {}";
const SYNTAX = 'x = 1\nresults = {}\nif <<SYNTAX>>';

const worlds: StageWorld[] = [];
afterEach(() => {
  for (const w of worlds.splice(0)) w.close();
});

function setup(doc: Record<string, unknown> = WRITES_HELD) {
  const world = stageWorld(doc);
  worlds.push(world);
  const analyzer = new MarkerAnalyzer();
  const processor = createAnalysisProcessor({ ...world.deps, analyzer, decidePolicy });
  return { world, analyzer, processor, queues: world.queues, store: world.store };
}

describe('analysis stage', () => {
  it('hands clean read-only code to execution with its analysis record, and writes analysis.json', async () => {
    const { world, processor, queues, store } = setup();
    const data = analysisJobData(world, READ);
    assert.equal(await processor(fakeJob(data, { id: `${REQUEST_ID}-analysis-1` })), 'ok');
    const next = queues.only();
    assert.equal(next.stage, 'execution');
    assert.equal(next.id, `${REQUEST_ID}-execution-1`);
    assert.equal(next.opts.delay, undefined);
    const env = ExecutionJob.parse(next.data);
    assert.equal(env.code, READ);
    assert.equal(env.analysis.mode, 'read_only');
    assert.equal(env.analysis.approvalRequired, false);
    assert.equal(env.analysis.analyzer, 'scripted');
    const { reportSha256, ...shown } = env.analysis;
    assert.equal(reportSha256, sha256(JSON.stringify(shown)), 'the report hash covers what the approver is shown');
    const onDisk = JSON.parse(await readFile(path.join(env.executionFolder, 'analysis.json'), 'utf8'));
    assert.equal(onDisk.codeSha256, sha256(READ));
    assert.equal(onDisk.reportSha256, reportSha256);
    assert.deepEqual(
      store.statuses.map((s) => s.status),
      ['analyzing'],
    );
    assert.equal(store.holdCalls.length, 0);
  });

  it('holds code that writes for approval: a delayed job at the deadline, the hold and status recorded', async () => {
    const { world, processor, queues, store } = setup();
    const before = Date.now();
    assert.equal(await processor(fakeJob(analysisJobData(world, WRITE))), 'held');
    const held = queues.only();
    assert.equal(held.stage, 'approval');
    assert.equal(held.id, `${REQUEST_ID}-approval-1`);
    assert.equal(held.opts.delay, 3600 * 1000, 'default_timeout_seconds');
    const env = ApprovalJob.parse(held.data);
    assert.ok(env.deadline >= before + 3600_000 && env.deadline <= Date.now() + 3600_000);
    assert.equal(env.analysis.mode, 'write_access');
    assert.equal(env.analysis.approvalRequired, true);
    assert.equal(env.analysis.writes[0]?.call, 'epics.caput');
    assert.deepEqual(store.holds.get(REQUEST_ID), { holdJobId: held.id, deadline: env.deadline });
    const waiting = store.statuses.at(-1)!;
    assert.equal(waiting.status, 'awaiting_approval');
    assert.deepEqual(waiting.data, {
      holdJobId: held.id,
      deadline: env.deadline,
      reason: 'Code contains control system write operations',
      mode: 'write_access',
      risk: 'high',
      codeSha256: sha256(WRITE),
    });
    assert.equal(await counted(world.metrics.analysisFindings, { rule: 'epics-write', severity: 'high' }), 1);
  });

  it("holds for the request's own approval timeout, capped at max_timeout_seconds", async () => {
    const doc = { ...WRITES_HELD, pyexec: { approval: { default_timeout_seconds: 60, max_timeout_seconds: 100 } } };
    const short = setup(doc);
    const data = analysisJobData(short.world, WRITE);
    await short.processor(fakeJob({ ...data, request: { ...data.request, approval_timeout_seconds: 30 } }));
    assert.equal(short.queues.only().opts.delay, 30_000);

    const long = setup(doc);
    const data2 = analysisJobData(long.world, WRITE);
    await long.processor(fakeJob({ ...data2, request: { ...data2.request, approval_timeout_seconds: 999_999 } }));
    assert.equal(long.queues.only().opts.delay, 100_000);
  });

  it('under the default policy (all code needs approval) holds read-only code too', async () => {
    const { world, processor, queues } = setup({});
    assert.equal(await processor(fakeJob(analysisJobData(world, READ))), 'held');
    assert.equal(queues.only().stage, 'approval');
  });

  it('rejects code that writes when writes are disabled, with the refusal in the chain', async () => {
    const { world, processor, queues, store } = setup({});
    assert.equal(await processor(fakeJob(analysisJobData(world, WRITE))), 'refused');
    const end = queues.only();
    assert.equal(end.id, `${REQUEST_ID}-result-1`);
    const env = ResultJob.parse(end.data);
    assert.equal(env.outcome.status, 'rejected');
    assert.equal(env.outcome.detail, 'writes_disabled');
    assert.equal(env.outcome.reason, 'EPICS writes blocked by configuration');
    assert.deepEqual(
      env.errorChain.map((e) => [e.stage, e.errorType, e.kind]),
      [['analysis', 'writes_disabled', 'safety']],
    );
    assert.equal(env.analysis?.mode, 'write_access', 'the result carries the analysis that refused it');
    assert.equal(store.holdCalls.length, 0);
  });

  it('sends a syntax error back to generation as the next attempt, with position and failed code', async () => {
    const { world, processor, queues } = setup();
    assert.equal(await processor(fakeJob(analysisJobData(world, SYNTAX))), 'regenerated');
    const retry = queues.only();
    assert.equal(retry.stage, 'generation');
    assert.equal(retry.id, `${REQUEST_ID}-generation-2`);
    const env = GenerationJob.parse(retry.data);
    assert.equal(env.attempt, 2);
    assert.equal(env.generationFailures, 1);
    const err = env.errorChain.at(-1)!;
    assert.equal(err.stage, 'analysis');
    assert.equal(err.errorType, 'syntax');
    assert.equal(err.kind, 'code');
    assert.equal(err.message, 'Syntax error at line 3, column 5: SyntaxError: invalid syntax');
    assert.equal(err.failedCode, SYNTAX);
    assert.equal(await counted(world.metrics.retries, { stage: 'analysis', error_class: 'code' }), 1);
  });

  it('ends the request failed when a syntax error finds the generation budget spent', async () => {
    const { world, processor, queues } = setup({ ...WRITES_HELD, python_executor: { max_generation_retries: 1 } });
    await processor(fakeJob(analysisJobData(world, SYNTAX, { attempt: 2, generationFailures: 1 })));
    const end = queues.only();
    assert.equal(end.id, `${REQUEST_ID}-result-2`);
    const env = ResultJob.parse(end.data);
    assert.equal(env.outcome.status, 'failed');
    assert.equal(env.outcome.detail, 'generation_retries_exhausted');
    assert.match(env.outcome.reason!, /last error: Syntax error at line 3/);
  });

  it('fails a job whose code does not match its sha256 at once (no retries), without analysing it', async () => {
    const { world, processor, queues, analyzer } = setup();
    const data = { ...analysisJobData(world, READ), code: `${READ}\nimport os` };
    assert.equal(await processor(fakeJob(data, { attempts: 5 })), 'failed');
    assert.equal(analyzer.analyzed.length, 0);
    const env = ResultJob.parse(queues.only().data);
    assert.equal(env.outcome.status, 'failed');
    assert.match(env.outcome.reason!, /code does not match its sha256/);
    assert.equal(env.outcome.detail, 'invalid_input');
  });
});
