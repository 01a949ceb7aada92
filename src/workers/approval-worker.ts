import type { Processor } from 'bullmq';
import type { ApprovalService } from '../approval/approval-service.js';
import { writeJson } from '../executors/execution-folder.js';
import { ApprovalJob } from '../queues/approval.js';
import { finishRequest, handoff, type StageDeps, stageProcessor, withError, withTiming } from './stage-runtime.js';

/**
 * Approval hold: a held job is a delayed job whose delay is its deadline. It reaches this worker
 * either when an approver's decision promotes it or when the deadline passes. The decision that
 * stands (approved, rejected, or expired when nobody decided first) routes it.
 */
export function createApprovalProcessor(deps: StageDeps & { approvals: ApprovalService }): Processor {
  return stageProcessor(deps, 'approval', ApprovalJob, async ({ env, job, startedAt }) => {
    const record = await deps.approvals.settle({
      holdJobId: job.id!,
      requestId: env.requestId,
      threadId: env.threadId,
      taskObjective: env.request.task_objective,
      codeSha256: env.codeSha256,
      analysisSha256: env.analysis.reportSha256,
      mode: env.analysis.mode,
      heldAt: env.enqueuedAt,
    });
    await writeJson(env.executionFolder, 'approval.json', record);
    await deps.store.setHold(env.requestId, null);
    const decided = withTiming({ ...env, approval: record }, 'approval', startedAt, record.decision);
    if (record.decision === 'approved') {
      await deps.store.event(env.requestId, 'approved', undefined, { approver: record.approver });
      await handoff(deps, 'execution', decided);
      return 'approved';
    }
    if (record.decision === 'rejected') {
      const rejected = withError(decided, {
        stage: 'approval',
        errorType: 'rejected',
        kind: 'safety',
        message: `rejected by ${record.approver}: ${record.reason ?? ''}`,
      });
      await finishRequest(deps, rejected, {
        status: 'rejected',
        reason: record.reason ?? 'rejected',
        detail: 'approver',
      });
      return 'rejected';
    }
    if (record.decision === 'cancelled') {
      // The producer cancelled while it was held (runStage normally ends it before this point).
      await finishRequest(deps, decided, { status: 'cancelled', reason: 'cancelled by the producer' });
      return 'cancelled';
    }
    const expired = withError(decided, {
      stage: 'approval',
      errorType: 'expired',
      kind: 'safety',
      message: 'no approval decision before the deadline',
    });
    await finishRequest(deps, expired, {
      status: 'expired',
      reason: 'no approval decision before the deadline',
      detail: 'deadline',
    });
    return 'expired';
  });
}
