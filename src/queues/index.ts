export { AnalysisJob } from './analysis.js';
export type { AnalysisJobInput } from './analysis.js';
export { ApprovalDecisionInput, ApprovalJob } from './approval.js';
export type { ApprovalJobInput } from './approval.js';
export {
  AnalysisRecord,
  ApprovalRecord,
  Envelope,
  ErrorEntry,
  ExecutionModeName,
  ExecutionRecord,
  Finding,
  Outcome,
  QueueName,
  STAGES,
  StageTiming,
  TerminalStatus,
} from './envelope.js';
export type { EnvelopeInput, Stage } from './envelope.js';
export { ExecutionJob } from './execution.js';
export type { ExecutionJobInput } from './execution.js';
export { GenerationJob } from './generation.js';
export type { GenerationJobInput } from './generation.js';
export { jobId, parseJob } from './job-id.js';
export { createQueueSet, jobOptions } from './queue-set.js';
export type { QueueSet } from './queue-set.js';
export { PythonExecutionRequest } from '../request.js';
export type { PythonExecutionRequestInput } from '../request.js';
export { PythonExecutionResponse, ResultJob } from './result.js';
export type { ResultJobInput } from './result.js';
