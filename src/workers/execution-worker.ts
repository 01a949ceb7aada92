import type { Processor } from 'bullmq';
import type { PolicyDecision } from '../analysis/policy.js';
import { ExecutorUnavailableError } from '../errors.js';
import type { Executor } from '../executors/executor.js';
import type { ExecutionMethod } from '../modes.js';
import { ExecutionJob } from '../queues/execution.js';
import { prepareRun } from '../store/execution-folder.js';
import { LiveOutput } from './live-output.js';
import {
  endRequest,
  regenerateOrFail,
  type StageDeps,
  sha256,
  stageProcessor,
  withError,
  withTiming,
} from './stage-runtime.js';

/**
 * Checks that what is about to run is exactly what the analysis saw and the approver approved.
 * The policy is recomputed from the code itself (`recheck`), so job data that claims "no approval
 * needed" or a read-only mode for code that writes cannot bypass the hold.
 */
function verifyApproval(env: ExecutionJob, rechecked: PolicyDecision | null): string | null {
  if (sha256(env.code) !== env.codeSha256) return 'the code does not match the sha256 recorded at generation';
  if (rechecked) {
    if (rechecked.refusal) return rechecked.refusal.message;
    if (rechecked.codeError) return 'the code no longer parses';
    if (rechecked.mode !== env.analysis.mode)
      return `the code needs ${rechecked.mode}, but the job was analysed as ${env.analysis.mode}`;
    if (rechecked.approvalRequired && !env.analysis.approvalRequired)
      return 'the policy requires approval for this code, but the job skipped the hold';
  }
  if (!env.analysis.approvalRequired) return null;
  const a = env.approval;
  if (a?.decision !== 'approved') return 'approval is required but the job carries no approval';
  if (a.codeSha256 !== sha256(env.code)) return 'the code differs from the code that was approved (sha256 mismatch)';
  if (a.analysisSha256 !== env.analysis.reportSha256) return 'the analysis differs from the analysis the approver saw';
  if (a.mode !== env.analysis.mode) return `approved for ${a.mode}, but the job asks for ${env.analysis.mode}`;
  return null;
}

/**
 * Execution: verifies the approval binding, writes the run's files, runs the code with the
 * configured method in the mode the analysis chose, and routes the outcome: success to result,
 * code errors back to generation (max_execution_retries), refusals to `rejected`. An executor that
 * is unavailable is retried in this stage, unless write-capable code may already have started:
 * that ends as `failed` with detail `needs_review`, never silently re-run.
 */
export function createExecutionProcessor(
  deps: StageDeps & {
    executors: Partial<Record<ExecutionMethod, Executor>>;
    /** Recomputes the policy from the code (the analyzer and policy of the analysis stage). */
    recheck?: (code: string) => Promise<PolicyDecision>;
  },
): Processor {
  return stageProcessor(deps, 'execution', ExecutionJob, async (run) => {
    const { env, job, startedAt, signal, log } = run;
    const mismatch = verifyApproval(env, deps.recheck ? await deps.recheck(env.code) : null);
    if (mismatch) {
      return endRequest(
        deps,
        run,
        { status: 'rejected', reason: mismatch, detail: 'approval_mismatch' },
        { label: 'refused', error: { errorType: 'approval_mismatch', kind: 'safety', message: mismatch } },
      );
    }
    const executor = deps.executors[env.executionMethod];
    if (!executor) throw new ExecutorUnavailableError(`no executor for method '${env.executionMethod}' in this worker`);
    await prepareRun(env.executionFolder, env.code, env.request.capability_context_data, env.approval?.payload);
    const mode = env.analysis.mode;
    let outcome: Awaited<ReturnType<Executor['execute']>>;
    const liveSettings = deps.config.pyexec.live_output;
    const live = liveSettings.enabled
      ? new LiveOutput({
          store: deps.store,
          requestId: env.requestId,
          flushMs: liveSettings.flush_ms,
          maxBytes: liveSettings.max_bytes,
          maxEvents: liveSettings.max_events,
          logger: log,
          onProgress: (p) => void job.updateProgress({ ...p }).catch(() => {}),
        })
      : undefined;
    try {
      outcome = await executor.execute(
        {
          requestId: env.requestId,
          code: env.code,
          mode,
          executionFolder: env.executionFolder,
          timeoutMs: deps.config.python_executor.execution_timeout_seconds * 1000,
          request: env.request,
          approvalPayload: env.approval?.payload,
          onOutput: live?.push,
        },
        signal,
      );
      await live?.close();
    } catch (err) {
      await live?.close();
      if (signal.aborted && (await deps.store.isCancelRequested(env.requestId))) {
        return endRequest(deps, run, { status: 'cancelled', reason: 'cancelled by the producer during execution' });
      }
      if (err instanceof ExecutorUnavailableError && err.started && mode === 'write_access') {
        log.error({ err: err.message }, 'write-capable execution interrupted; not re-running');
        return endRequest(
          deps,
          run,
          {
            status: 'failed',
            reason: `execution of write-capable code was interrupted (${err.message}); it may have written to EPICS and is not re-run automatically`,
            detail: 'needs_review',
          },
          { label: 'needs_review', error: { errorType: 'interrupted', kind: 'infrastructure', message: err.message } },
        );
      }
      throw err;
    }
    if (outcome.status === 'ok') {
      const execution = {
        method: executor.method,
        mode,
        results: outcome.results,
        stdout: outcome.stdout,
        stderr: outcome.stderr,
        figures: [...outcome.figures],
        durationMs: outcome.durationMs,
        executionFolder: env.executionFolder,
        ...(outcome.kernel ? { kernel: outcome.kernel } : {}),
      };
      await endRequest(deps, { ...run, env: { ...env, execution } }, { status: 'succeeded' }, { label: 'ok' });
      return 'ok';
    }
    if (outcome.status === 'refused') {
      return endRequest(
        deps,
        run,
        { status: 'rejected', reason: outcome.message, detail: outcome.errorType },
        {
          label: 'refused',
          error: { errorType: outcome.errorType, kind: 'safety', message: outcome.message, failedCode: env.code },
        },
      );
    }
    const failed = withTiming(
      withError(env, {
        stage: 'execution',
        errorType: outcome.errorType,
        kind: 'code',
        message: outcome.message,
        traceback: outcome.traceback,
        failedCode: env.code,
      }),
      'execution',
      startedAt,
      'code_error',
    );
    return regenerateOrFail(deps, failed, 'execution', 'execution');
  });
}
