/**
 * The approval-hold stage (createApprovalProcessor) with in-memory fakes and a scripted
 * ApprovalService.settle: the decision that stands routes the held job (approved to execution,
 * rejected / expired / cancelled to the result stage), the hold is cleared, and the settle is keyed
 * by the hold's job id (a requeued `-r1` job settles the hold it was).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { ApprovalJobInput } from '../../../src/queues/approval.js';
import type { ApprovalRecord } from '../../../src/queues/envelope.js';
import { ExecutionJob } from '../../../src/queues/execution.js';
import { ResultJob } from '../../../src/queues/result.js';
import { createApprovalProcessor } from '../../../src/workers/approval-worker.js';
import { sha256 } from '../../../src/workers/stage-runtime.js';
import {
  analysisJobData,
  analysisRecord,
  approvalRecord,
  FakeApprovals,
  fakeJob,
  REQUEST_ID,
  type StageWorld,
  stageWorld,
  WRITES_HELD,
} from '../../support/stage-fakes.js';

const WRITE = "from epics import caput\ncaput('SR:SETPOINT', 1.0)\nresults = {}";
const HOLD_ID = `${REQUEST_ID}-approval-1`;
const ANALYSIS = analysisRecord({
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

function setup(decide: (held: { holdJobId: string }) => ApprovalRecord | Error) {
  const world = stageWorld(WRITES_HELD);
  worlds.push(world);
  const approvals = new FakeApprovals(decide);
  const processor = createApprovalProcessor({ ...world.deps, approvals: approvals.service });
  const data: ApprovalJobInput = {
    ...analysisJobData(world, WRITE),
    analysis: ANALYSIS,
    deadline: Date.now() + 60_000,
    enqueuedAt: 1_700_000_000_000,
  };
  // The analysis stage recorded the hold.
  void world.store.setHold(REQUEST_ID, { holdJobId: HOLD_ID, deadline: data.deadline });
  return { world, approvals, processor, data, queues: world.queues, store: world.store };
}

const decided =
  (decision: ApprovalRecord['decision'], extra: Partial<ApprovalRecord> = {}) =>
  (held: { holdJobId: string }) =>
    approvalRecord(WRITE, ANALYSIS, { holdJobId: held.holdJobId, decision, ...extra });

describe('approval-hold stage', () => {
  it('an approval releases the job to execution, bound to the code and analysis that were shown', async () => {
    const { processor, data, queues, store, approvals } = setup(
      decided('approved', { approver: 'alice', payload: { reason: 'ok by ops' } }),
    );
    assert.equal(await processor(fakeJob(data, { id: HOLD_ID })), 'approved');
    assert.deepEqual(approvals.settled, [
      {
        holdJobId: HOLD_ID,
        requestId: REQUEST_ID,
        threadId: data.threadId,
        taskObjective: data.request.task_objective,
        codeSha256: sha256(WRITE),
        analysisSha256: ANALYSIS.reportSha256,
        mode: 'write_access',
        heldAt: 1_700_000_000_000,
      },
    ]);
    const next = queues.only();
    assert.equal(next.stage, 'execution');
    assert.equal(next.id, `${REQUEST_ID}-execution-1`);
    const env = ExecutionJob.parse(next.data);
    assert.equal(env.approval?.decision, 'approved');
    assert.equal(env.approval?.codeSha256, sha256(WRITE));
    assert.deepEqual(env.approval?.payload, { reason: 'ok by ops' });
    assert.deepEqual(
      env.timings.map((t) => [t.stage, t.outcome]),
      [['approval', 'approved']],
    );
    assert.equal(store.holds.has(REQUEST_ID), false, 'the hold is cleared');
    assert.deepEqual(
      store.events.map((e) => [e.type, e.data]),
      [['approved', { approver: 'alice' }]],
    );
    const onDisk = JSON.parse(await readFile(path.join(env.executionFolder, 'approval.json'), 'utf8'));
    assert.equal(onDisk.decision, 'approved');
  });

  it('a requeued hold job (<id>-r1) settles the hold it stands for', async () => {
    const { processor, data, approvals, queues } = setup(decided('approved'));
    await processor(fakeJob(data, { id: `${HOLD_ID}-r1` }));
    assert.equal(approvals.settled[0]!.holdJobId, HOLD_ID);
    assert.equal(queues.only().id, `${REQUEST_ID}-execution-1`);
  });

  it('a rejection ends the request rejected, with the approver and reason', async () => {
    const { processor, data, queues, store } = setup(
      decided('rejected', { approver: 'bob', reason: 'not during injection' }),
    );
    assert.equal(await processor(fakeJob(data, { id: HOLD_ID })), 'rejected');
    const end = queues.only();
    assert.equal(end.id, `${REQUEST_ID}-result-1`);
    const env = ResultJob.parse(end.data);
    assert.deepEqual(env.outcome, { status: 'rejected', reason: 'not during injection', detail: 'approver' });
    assert.deepEqual(
      env.errorChain.map((e) => [e.stage, e.errorType, e.kind, e.message]),
      [['approval', 'rejected', 'safety', 'rejected by bob: not during injection']],
    );
    assert.equal(env.approval?.decision, 'rejected');
    assert.equal(store.holds.has(REQUEST_ID), false);
    assert.equal(store.events.length, 0, 'no approved event');
  });

  it('no decision before the deadline: the request expires', async () => {
    const { processor, data, queues } = setup(
      decided('expired', { approver: 'system:deadline', reason: 'no decision before the deadline' }),
    );
    assert.equal(await processor(fakeJob(data, { id: HOLD_ID })), 'expired');
    const env = ResultJob.parse(queues.only().data);
    assert.deepEqual(env.outcome, {
      status: 'expired',
      reason: 'no approval decision before the deadline',
      detail: 'deadline',
    });
    assert.equal(env.errorChain[0]?.errorType, 'expired');
  });

  it('a hold the producer withdrew (decision cancelled) ends the request cancelled', async () => {
    const { processor, data, queues } = setup(decided('cancelled', { approver: 'system:cancel' }));
    assert.equal(await processor(fakeJob(data, { id: HOLD_ID })), 'cancelled');
    const env = ResultJob.parse(queues.only().data);
    assert.equal(env.outcome.status, 'cancelled');
    assert.equal(env.errorChain.length, 0);
  });

  it('a settle that cannot reach its store is retried (the hold stays), not decided', async () => {
    const { processor, data, queues, store } = setup(() => new Error('connection is closed'));
    await assert.rejects(
      processor(fakeJob(data, { id: HOLD_ID, attemptsMade: 0, attempts: 3 })),
      /connection is closed/,
    );
    assert.equal(queues.added.length, 0);
    assert.deepEqual(store.holds.get(REQUEST_ID)?.holdJobId, HOLD_ID);
  });
});
