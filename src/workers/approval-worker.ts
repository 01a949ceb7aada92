import type { Processor } from 'bullmq';
import type { ApprovalService } from '../approval/approval-service.js';
import { ApprovalJob } from '../queues/approval.js';
import { baseJobId } from '../queues/job-id.js';
import { writeJson } from '../store/execution-folder.js';
import { endRequest, handoff, type StageDeps, stageProcessor, withTiming } from './stage-runtime.js';

/**
 * Approval hold: a held job is a delayed job whose delay is its deadline. It reaches this worker
 * either when an approver's decision promotes it or when the deadline passes. The decision that
 * stands (approved, rejected, or expired when nobody decided first) routes it.
 */
export function createApprovalProcessor(deps: StageDeps & { approvals: Pick<ApprovalService, 'settle'> }): Processor {
  return stageProcessor(deps, 'approval', ApprovalJob, async ({ env, job, startedAt }) => {
    // A held job the reaper ran again (`<id>-r1`) settles the hold it was: the decision is keyed by that id.
    const holdJobId = baseJobId(job.id!);
    const record = await deps.approvals.settle({
      holdJobId,
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
    const decided = { ...env, approval: record };
    if (record.decision === 'approved') {
      await deps.store.event(env.requestId, 'approved', undefined, { approver: record.approver });
      await handoff(deps, 'execution', withTiming(decided, 'approval', startedAt, record.decision));
      return 'approved';
    }
    const from = { env: decided, stage: 'approval' as const, startedAt };
    if (record.decision === 'rejected') {
      return endRequest(
        deps,
        from,
        { status: 'rejected', reason: record.reason ?? 'rejected', detail: 'approver' },
        {
          error: {
            errorType: 'rejected',
            kind: 'safety',
            message: `rejected by ${record.approver}: ${record.reason ?? ''}`,
          },
        },
      );
    }
    if (record.decision === 'cancelled') {
      // The producer cancelled while it was held (runStage normally ends it before this point).
      return endRequest(deps, from, { status: 'cancelled', reason: 'cancelled by the producer' });
    }
    const message = 'no approval decision before the deadline';
    return endRequest(
      deps,
      from,
      { status: 'expired', reason: message, detail: 'deadline' },
      { error: { errorType: 'expired', kind: 'safety', message } },
    );
  });
}
