import { z } from 'zod';
import { Finding, WriteSite } from '../queues/envelope.js';
import { PythonExecutionResponse } from '../queues/result.js';
import type { RequestSnapshot } from '../store/request-store.js';
import { EVENT_TYPES } from './events.js';

/*
 * The JSON documents producers read, with the request model's snake_case: what `pyexec submit
 * --json`, `pyexec status --json` and the HTTP API print, and what the HTTP clients parse. The zod
 * schemas are the single source: the API validates and documents (OpenAPI) with them.
 */

export const RequestStatusSchema = z.enum([
  'queued',
  'generating',
  'analyzing',
  'awaiting_approval',
  'executing',
  'finishing',
  'succeeded',
  'failed',
  'rejected',
  'expired',
  'cancelled',
]);

/** What a submit answers. */
export const SubmitResultView = z.object({
  request_id: z.string(),
  thread_id: z.string(),
  /** false: the thread id was submitted before; that request is returned, nothing is enqueued. */
  created: z.boolean(),
});
export type SubmitResultView = z.output<typeof SubmitResultView>;

/** Where a request is; `response` once it ended. */
export const RequestView = z.object({
  request_id: z.string(),
  thread_id: z.string(),
  status: RequestStatusSchema,
  submitted_at: z.number(),
  updated_at: z.number(),
  cancel_requested: z.boolean(),
  hold: z.object({ hold_job_id: z.string(), deadline: z.number() }).nullable(),
  submitted_by: z.string().nullable(),
  response: PythonExecutionResponse.nullable(),
});
export type RequestView = z.output<typeof RequestView>;

/** A held request: what the approver sees, so the producer can tell its user. */
export const ApprovalRequiredView = z.object({
  kind: z.literal('approval_required'),
  request_id: z.string(),
  hold_job_id: z.string(),
  deadline: z.number(),
  reason: z.string(),
  mode: z.string(),
  risk: z.string(),
  code_sha256: z.string(),
  /** Read from the held job; null when it is already gone. */
  view: z
    .object({
      task_objective: z.string(),
      code: z.string(),
      analysis_sha256: z.string(),
      approval_reason: z.string(),
      findings: z.array(Finding),
      writes: z.array(WriteSite),
    })
    .nullable(),
});
export type ApprovalRequiredView = z.output<typeof ApprovalRequiredView>;

/** How a wait ended. */
export const WaitResultView = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('finished'), response: PythonExecutionResponse }),
  ApprovalRequiredView,
  z.object({ kind: z.literal('timeout'), request: RequestView.nullable() }),
]);
export type WaitResultView = z.output<typeof WaitResultView>;

/** One event (see events.ts); the SSE `data:` of the HTTP API. */
export const EventView = z
  .object({
    type: z.enum(EVENT_TYPES),
    id: z.string(),
    at: z.number(),
    status: RequestStatusSchema.optional(),
    text: z.string().optional(),
    data: z.record(z.string(), z.unknown()).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();

export function requestView(s: RequestSnapshot): RequestView {
  return {
    request_id: s.requestId,
    thread_id: s.threadId,
    status: s.status,
    submitted_at: s.submittedAt,
    updated_at: s.updatedAt,
    cancel_requested: s.cancelRequested,
    hold: s.hold ? { hold_job_id: s.hold.holdJobId, deadline: s.hold.deadline } : null,
    submitted_by: s.submittedBy ?? null,
    response: (s.response as PythonExecutionResponse | undefined) ?? null,
  };
}

/** A held request as JSON. */
export function approvalRequiredView(a: {
  requestId: string;
  holdJobId: string;
  deadline: number;
  reason: string;
  mode: string;
  risk: string;
  codeSha256: string;
  view?: {
    taskObjective: string;
    code: string;
    analysisSha256: string;
    approvalReason: string;
    findings: readonly z.output<typeof Finding>[];
    writes: readonly z.output<typeof WriteSite>[];
  };
}): ApprovalRequiredView {
  return {
    kind: 'approval_required',
    request_id: a.requestId,
    hold_job_id: a.holdJobId,
    deadline: a.deadline,
    reason: a.reason,
    mode: a.mode,
    risk: a.risk,
    code_sha256: a.codeSha256,
    view: a.view
      ? {
          task_objective: a.view.taskObjective,
          code: a.view.code,
          analysis_sha256: a.view.analysisSha256,
          approval_reason: a.view.approvalReason,
          findings: [...a.view.findings],
          writes: [...a.view.writes],
        }
      : null,
  };
}
