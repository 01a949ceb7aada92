import { z } from 'zod';
import { Envelope } from './envelope.js';

/** Analysis: the envelope with the generated code and its sha256. */
export const AnalysisJob = Envelope.extend({ code: z.string().max(1_000_000), codeSha256: z.string().length(64) });
export type AnalysisJob = z.output<typeof AnalysisJob>;
export type AnalysisJobInput = z.input<typeof AnalysisJob>;
