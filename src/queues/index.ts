export type { PythonExecutionRequestInput } from '../request.js';
export { PythonExecutionRequest } from '../request.js';
export type { AnalysisJobInput } from './analysis.js';
export { AnalysisJob } from './analysis.js';
export type { ApprovalJobInput } from './approval.js';
export { ApprovalDecisionInput, ApprovalJob } from './approval.js';
export type { EnvelopeInput, Stage } from './envelope.js';
export {
  AnalysisRecord,
  ApprovalRecord,
  Envelope,
  ErrorEntry,
  ExecutionRecord,
  Finding,
  Outcome,
  QueueName,
  STAGES,
  StageTiming,
  TerminalStatus,
} from './envelope.js';
export type { ExecutionJobInput } from './execution.js';
export { ExecutionJob } from './execution.js';
export type { GenerationJobInput } from './generation.js';
export { GenerationJob } from './generation.js';
export { jobId, parseJob } from './job-id.js';
export type { QueueSet } from './queue-set.js';
export { createQueueSet, jobOptions } from './queue-set.js';
export type { ResultJobInput } from './result.js';
export { PythonExecutionResponse, ResultJob } from './result.js';
