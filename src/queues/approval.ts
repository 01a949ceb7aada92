import { z } from 'zod';
import { AnalysisJob } from './analysis.js';
import { AnalysisRecord } from './envelope.js';

/** Approval hold: analysed code waiting for a person, with its deadline. */
export const ApprovalJob = AnalysisJob.extend({ analysis: AnalysisRecord, deadline: z.number() });
export type ApprovalJob = z.output<typeof ApprovalJob>;
export type ApprovalJobInput = z.input<typeof ApprovalJob>;

/** What an approver sends. `payload` reaches the execution and the response. */
export const ApprovalDecisionInput = z.discriminatedUnion('decision', [
  z.object({
    decision: z.literal('approved'),
    approver: z.string().min(1),
    payload: z.record(z.string(), z.unknown()).optional(),
    source: z.string().optional(),
  }),
  z.object({
    decision: z.literal('rejected'),
    approver: z.string().min(1),
    reason: z.string().min(1, 'a rejection needs a reason'),
    source: z.string().optional(),
  }),
]);
export type ApprovalDecisionInput = z.input<typeof ApprovalDecisionInput>;
