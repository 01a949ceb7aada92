import { ApprovalConflictError, type ErrorKind, ServiceError } from '../errors.js';

/**
 * Thrown when an approver decides on code or an analysis other than what they were shown: the held
 * job changed between `show` and the decision. Nothing is decided; show it again.
 */
export class ApprovalStaleError extends ApprovalConflictError {
  override readonly code = 'approval_stale';
}

/**
 * Thrown by the approver API client when the API answers with an error (or cannot be reached).
 * `status` is the HTTP status (0 when there was no answer); `code` the API's error code.
 */
export class ApproverApiError extends ServiceError {
  override readonly code: string;
  override readonly kind: ErrorKind;
  constructor(
    message: string,
    readonly status: number,
    code = 'approver_api',
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.kind = status >= 400 && status < 500 ? 'invalid_input' : 'infrastructure';
  }
}
