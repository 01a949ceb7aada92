import { ServiceError } from '../errors.js';

/** Thrown when a program is larger than the analyzer's size limit (`maxCodeBytes`); regenerate smaller code. */
export class CodeTooLargeError extends ServiceError {
  override readonly code = 'analysis_code_too_large';
  override readonly kind = 'code';
}

/** Thrown when the analysis of one program takes longer than `timeoutMs` (the helper is killed and restarted). */
export class AnalysisTimeoutError extends ServiceError {
  override readonly code = 'analysis_timeout';
  override readonly kind = 'code';
}

/** Thrown when one program exhausts the helper's memory or crashes it twice in a row. */
export class AnalysisResourceError extends ServiceError {
  override readonly code = 'analysis_resource';
  override readonly kind = 'code';
}

/** Thrown when the analysis helper cannot be started, answers nonsense, or was closed (retry with backoff). */
export class AnalysisHelperError extends ServiceError {
  override readonly code = 'analysis_helper_failed';
  override readonly kind = 'infrastructure';
}
