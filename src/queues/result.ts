import { z } from 'zod';
import { Envelope, ErrorEntry, Outcome, TerminalStatus } from './envelope.js';

/** Result: the envelope plus the terminal decision of the stage that ended the request. */
export const ResultJob = Envelope.extend({ outcome: Outcome });
export type ResultJob = z.output<typeof ResultJob>;
export type ResultJobInput = z.input<typeof ResultJob>;

/**
 * The final response a producer reads (snake_case, following Osprey's `to_dict()` of
 * PythonExecutionSuccess / PythonServiceResult, plus what a fleet adds: status, error chain).
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
  figure_paths: z.array(z.string()),
  figure_count: z.number(),
  generated_code: z.string().nullable(),
  generation_attempt: z.number(),
  error_chain: z.array(ErrorEntry),
  analysis: z.unknown().nullable(),
  approval: z.unknown().nullable(),
  timings: z.array(z.unknown()),
  finished_at: z.number(),
});
export type PythonExecutionResponse = z.output<typeof PythonExecutionResponse>;
