import { z } from 'zod';
import { ExecutionMode } from '../modes.js';
import {
  AnalysisRecord,
  ApprovalRecord,
  Envelope,
  ErrorEntry,
  Finding,
  Outcome,
  StageTiming,
  TerminalStatus,
  WriteSite,
} from './envelope.js';

/** Result: the envelope plus the terminal decision of the stage that ended the request. */
export const ResultJob = Envelope.extend({ outcome: Outcome });
export type ResultJob = z.output<typeof ResultJob>;
export type ResultJobInput = z.input<typeof ResultJob>;

/** One error of the chain, as the producer reads it (snake_case). */
export const ErrorEntryView = z.object({
  stage: ErrorEntry.shape.stage,
  error_type: z.string(),
  kind: ErrorEntry.shape.kind,
  message: z.string(),
  traceback: z.string().nullable(),
  failed_code: z.string().nullable(),
  issues: z.array(z.string()),
  attempt: z.number().int(),
  at: z.number(),
});
export type ErrorEntryView = z.output<typeof ErrorEntryView>;

/** The static analysis the code was judged by. */
export const AnalysisView = z.object({
  syntax_ok: z.boolean(),
  has_writes: z.boolean(),
  has_reads: z.boolean(),
  risk: AnalysisRecord.shape.risk,
  findings: z.array(Finding),
  writes: z.array(WriteSite),
  mode: ExecutionMode,
  approval_required: z.boolean(),
  approval_reason: z.string(),
  report_sha256: z.string(),
  analyzer: z.string(),
});

/** The decision that released (or ended) it. */
export const ApprovalView = z.object({
  hold_job_id: z.string(),
  decision: ApprovalRecord.shape.decision,
  approver: z.string(),
  decided_at: z.number(),
  code_sha256: z.string(),
  analysis_sha256: z.string(),
  mode: ExecutionMode,
  reason: z.string().nullable(),
  payload: z.record(z.string(), z.unknown()).nullable(),
});

export const TimingView = z.object({
  stage: StageTiming.shape.stage,
  attempt: z.number().int(),
  enqueued_at: z.number(),
  started_at: z.number(),
  finished_at: z.number(),
  outcome: z.string(),
});

/** Osprey's `PythonExecutionSuccess.to_dict()`: present when the request succeeded. */
export const ExecutionResultView = z.object({
  results: z.unknown(),
  execution_stdout: z.string(),
  execution_time_seconds: z.number(),
  execution_folder: z.string(),
  notebook_path: z.string().nullable(),
  notebook_link: z.string().nullable(),
  figure_paths: z.array(z.string()),
  figure_count: z.number().int(),
});

/**
 * The final response a producer reads: snake_case throughout, following Osprey's `to_dict()` of
 * PythonExecutionSuccess / PythonServiceResult (the flat fields, and the same again as
 * `execution_result` on success), plus what a fleet adds: status, reason, the error chain, the
 * analysis, the approval, timings.
 */
export const PythonExecutionResponse = z.object({
  request_id: z.string(),
  thread_id: z.string(),
  status: TerminalStatus,
  reason: z.string().nullable(),
  detail: z.string().nullable(),
  results: z.unknown().nullable(),
  execution_stdout: z.string(),
  execution_stderr: z.string(),
  execution_time_seconds: z.number().nullable(),
  execution_folder: z.string(),
  execution_method: z.string(),
  execution_mode: z.string().nullable(),
  notebook_path: z.string().nullable(),
  /** The notebook in JupyterLab (`execution.container.notebook_base_url`), else null. */
  notebook_link: z.string().nullable(),
  figure_paths: z.array(z.string()),
  figure_count: z.number(),
  /** Osprey's `service_result.execution_result`: null unless the request succeeded. */
  execution_result: ExecutionResultView.nullable(),
  generated_code: z.string().nullable(),
  generation_attempt: z.number(),
  error_chain: z.array(ErrorEntryView),
  analysis: AnalysisView.nullable(),
  approval: ApprovalView.nullable(),
  timings: z.array(TimingView),
  finished_at: z.number(),
});
export type PythonExecutionResponse = z.output<typeof PythonExecutionResponse>;

/** The envelope's records as the response shows them (snake_case). */
export const responseViews = {
  error(e: ErrorEntry): ErrorEntryView {
    return {
      stage: e.stage,
      error_type: e.errorType,
      kind: e.kind,
      message: e.message,
      traceback: e.traceback ?? null,
      failed_code: e.failedCode ?? null,
      issues: e.issues,
      attempt: e.attempt,
      at: e.at,
    };
  },
  analysis(a: AnalysisRecord): z.output<typeof AnalysisView> {
    return {
      syntax_ok: a.syntaxOk,
      has_writes: a.hasWrites,
      has_reads: a.hasReads,
      risk: a.risk,
      findings: a.findings,
      writes: a.writes,
      mode: a.mode,
      approval_required: a.approvalRequired,
      approval_reason: a.approvalReason,
      report_sha256: a.reportSha256,
      analyzer: a.analyzer,
    };
  },
  approval(a: ApprovalRecord): z.output<typeof ApprovalView> {
    return {
      hold_job_id: a.holdJobId,
      decision: a.decision,
      approver: a.approver,
      decided_at: a.decidedAt,
      code_sha256: a.codeSha256,
      analysis_sha256: a.analysisSha256,
      mode: a.mode,
      reason: a.reason ?? null,
      payload: a.payload ?? null,
    };
  },
  timing(t: StageTiming): z.output<typeof TimingView> {
    return {
      stage: t.stage,
      attempt: t.attempt,
      enqueued_at: t.enqueuedAt,
      started_at: t.startedAt,
      finished_at: t.finishedAt,
      outcome: t.outcome,
    };
  },
};
