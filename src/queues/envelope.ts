import { z } from 'zod';
import { ExecutionMethod, ExecutionMode } from '../modes.js';
import { PythonExecutionRequest } from '../request.js';

/** The longest W3C `traceparent` / `tracestate` a job carries (longer ones are dropped: a new trace). */
const TRACEPARENT_MAX = 128;
const TRACESTATE_MAX = 512;

/**
 * The W3C trace context in untrusted input (a producer's submit, job data): a string traceparent of
 * sane length, with its tracestate when that is sane too; anything else is none (a new trace).
 */
export function readTrace(raw: unknown): { traceparent: string; tracestate?: string } | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const { traceparent: tp, tracestate: ts } = raw as Record<string, unknown>;
  if (typeof tp !== 'string' || tp.length > TRACEPARENT_MAX) return undefined;
  return typeof ts === 'string' && ts.length <= TRACESTATE_MAX
    ? { traceparent: tp, tracestate: ts }
    : { traceparent: tp };
}

export { QueueName, STAGES, type Stage } from './queue-name.js';

export const TerminalStatus = z.enum(['succeeded', 'failed', 'rejected', 'expired', 'cancelled']);
export type TerminalStatus = z.output<typeof TerminalStatus>;

/** One entry of the error chain (Osprey's `ExecutionError`), fed back to the generator on retry. */
export const ErrorEntry = z.object({
  stage: z.enum(['generation', 'analysis', 'approval', 'execution', 'result']),
  /** generation | syntax | analysis | runtime | missing_results | timeout | infrastructure | safety | ... */
  errorType: z.string(),
  kind: z.enum(['code', 'infrastructure', 'safety', 'configuration', 'invalid_input']),
  message: z.string(),
  traceback: z.string().optional(),
  failedCode: z.string().optional(),
  issues: z.array(z.string()).default([]),
  attempt: z.number().int().min(1),
  at: z.number(),
});
export type ErrorEntry = z.output<typeof ErrorEntry>;

export const StageTiming = z.object({
  stage: z.enum(['generation', 'analysis', 'approval', 'execution', 'result']),
  attempt: z.number().int(),
  enqueuedAt: z.number(),
  startedAt: z.number(),
  finishedAt: z.number(),
  outcome: z.string(),
});
export type StageTiming = z.output<typeof StageTiming>;

export const Finding = z.object({
  rule: z.string(),
  severity: z.enum(['info', 'low', 'medium', 'high']),
  line: z.number().int(),
  column: z.number().int(),
  message: z.string(),
  source: z.string().optional(),
});
export type Finding = z.output<typeof Finding>;

/** A write call the analysis found (src/analysis WriteSite): what the approver's summary lists. */
export const WriteSite = z.object({
  line: z.number().int(),
  column: z.number().int(),
  call: z.string(),
  pvs: z.array(z.string()),
  target: z.string().nullable(),
  value: z.string().nullable(),
});
export type WriteSite = z.output<typeof WriteSite>;

/** What the analysis stage decided, kept in the envelope and shown to approvers. */
export const AnalysisRecord = z.object({
  syntaxOk: z.boolean(),
  hasWrites: z.boolean(),
  hasReads: z.boolean(),
  risk: z.enum(['low', 'medium', 'high']),
  findings: z.array(Finding),
  /** The write calls with their PV and value (for the approver); older jobs have none. */
  writes: z.array(WriteSite).default([]),
  mode: ExecutionMode,
  approvalRequired: z.boolean(),
  approvalReason: z.string(),
  reportSha256: z.string(),
  analyzer: z.string(),
});
export type AnalysisRecord = z.output<typeof AnalysisRecord>;

/** A person's decision, bound to the exact code and analysis they saw. */
export const ApprovalRecord = z.object({
  holdJobId: z.string(),
  /** `cancelled`: the producer cancelled the request while it was held (no person decided). */
  decision: z.enum(['approved', 'rejected', 'expired', 'cancelled']),
  approver: z.string(),
  decidedAt: z.number(),
  codeSha256: z.string(),
  analysisSha256: z.string(),
  mode: ExecutionMode,
  reason: z.string().optional(),
  payload: z.record(z.string(), z.unknown()).optional(),
});
export type ApprovalRecord = z.output<typeof ApprovalRecord>;

/** What an executor returned for a successful run. */
export const ExecutionRecord = z.object({
  method: ExecutionMethod,
  mode: ExecutionMode,
  results: z.unknown(),
  stdout: z.string(),
  stderr: z.string(),
  figures: z.array(z.string()),
  durationMs: z.number(),
  executionFolder: z.string(),
  kernel: z.string().optional(),
});
export type ExecutionRecord = z.output<typeof ExecutionRecord>;

/**
 * The job envelope: every stage's job carries it, and each stage adds what it produced. Retry
 * counts live here (not in worker memory), as does the error chain and the per-stage timings.
 */
export const Envelope = z.object({
  requestId: z.string().uuid(),
  threadId: z.string(),
  request: PythonExecutionRequest,
  submittedAt: z.number(),
  /** Round through generation, from 1; part of every next-stage job id. */
  attempt: z.number().int().min(1),
  /** Code errors found before execution (generation, syntax) so far. */
  generationFailures: z.number().int().min(0).default(0),
  /** Code errors found by execution (runtime, missing results) so far. */
  executionFailures: z.number().int().min(0).default(0),
  executionMethod: ExecutionMethod,
  executionFolder: z.string(),
  code: z.string().max(1_000_000).optional(),
  codeSha256: z.string().optional(),
  generator: z.string().optional(),
  analysis: AnalysisRecord.optional(),
  approval: ApprovalRecord.optional(),
  execution: ExecutionRecord.optional(),
  errorChain: z.array(ErrorEntry).default([]),
  timings: z.array(StageTiming).default([]),
  /** When this stage's job was enqueued (for queue-wait timings). */
  enqueuedAt: z.number().default(() => Date.now()),
  /**
   * W3C trace context of the stage that handed the job over (src/telemetry/): the next stage's span
   * continues the request's trace. Untrusted: anything malformed is dropped (a new trace), never an error.
   */
  trace: z
    .object({
      traceparent: z.string().max(TRACEPARENT_MAX).optional(),
      tracestate: z.string().max(TRACESTATE_MAX).optional(),
    })
    .optional()
    .catch(undefined),
});
export type Envelope = z.output<typeof Envelope>;
export type EnvelopeInput = z.input<typeof Envelope>;

/** The terminal decision that a stage hands to the result stage. */
export const Outcome = z.object({
  status: TerminalStatus,
  reason: z.string().optional(),
  /** e.g. `needs_review` when an execution that may write could not be confirmed finished. */
  detail: z.string().optional(),
});
export type Outcome = z.output<typeof Outcome>;
