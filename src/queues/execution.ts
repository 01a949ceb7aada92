import type { z } from 'zod';
import { AnalysisJob } from './analysis.js';
import { AnalysisRecord } from './envelope.js';

/** Execution: analysed (and, where the policy asks, approved) code. */
export const ExecutionJob = AnalysisJob.extend({ analysis: AnalysisRecord });
export type ExecutionJob = z.output<typeof ExecutionJob>;
export type ExecutionJobInput = z.input<typeof ExecutionJob>;
