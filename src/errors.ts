/**
 * The error taxonomy of pyexec. Errors are classified by class (structure), never by matching words
 * in messages. Each error carries a stable `code` for logs and metrics, a `kind` that decides the
 * routing in the pipeline, and a `retryable` flag that the workers map to BullMQ behaviour.
 *
 * - `code`: the generated code is wrong (syntax, runtime exception, missing `results`): regenerate.
 * - `infrastructure`: something outside the code failed (kernel died, LLM rate limit): retry the same
 *   stage with backoff; the code is not regenerated.
 * - `safety`: a policy refused the code (write blocked, limits violated, approval rejected): terminal.
 * - `configuration`: the service is set up wrong (bad key, bad credentials): terminal.
 * - `invalid_input`: a request or job that can never succeed as sent: terminal, nothing enqueued.
 */
export type ErrorKind = 'code' | 'infrastructure' | 'safety' | 'configuration' | 'invalid_input';

export class ServiceError extends Error {
  readonly code: string = 'service_error';
  readonly kind: ErrorKind = 'infrastructure';
  get retryable(): boolean {
    return this.kind === 'infrastructure';
  }
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Thrown when config.yml (or the environment it expands) is invalid. */
export class ConfigError extends ServiceError {
  override readonly code = 'config_invalid';
  override readonly kind = 'configuration';
}

/** Thrown when a producer's request fails validation; nothing is written to Redis. */
export class InvalidRequestError extends ServiceError {
  override readonly code: string = 'request_invalid';
  override readonly kind = 'invalid_input';
}

/** Thrown when a request is over a limit of `pyexec.request_limits` (bytes, depth, keys); nothing is written. */
export class RequestTooLargeError extends InvalidRequestError {
  override readonly code = 'request_too_large';
}

/**
 * Thrown by an executor when the request's data cannot be handed to the code (the kernel cannot
 * decode it): the request's own error, terminal, not an infrastructure failure to retry.
 */
export class RequestInputError extends ServiceError {
  override readonly code = 'request_input';
  override readonly kind = 'invalid_input';
}

/**
 * Thrown when a job's own data contradicts itself (its code does not match its sha256): it can
 * never succeed, so the request ends at once instead of retrying.
 */
export class CorruptJobError extends ServiceError {
  override readonly code = 'job_corrupt';
  override readonly kind = 'invalid_input';
}

/** Thrown by a generator when the model produced no usable code (counts against generation retries). */
export class CodeGenerationError extends ServiceError {
  override readonly code = 'generation_failed';
  override readonly kind = 'code';
}

/** Thrown when an LLM provider is rate limiting, timing out or failing with 5xx (retried with backoff). */
export class GeneratorUnavailableError extends ServiceError {
  override readonly code = 'generator_unavailable';
  override readonly kind = 'infrastructure';
}

/** Thrown when an LLM provider refuses the credentials or the model does not exist (terminal). */
export class GeneratorConfigError extends ServiceError {
  override readonly code = 'generator_config';
  override readonly kind = 'configuration';
}

/**
 * Thrown when no kernel (or no Python runtime) can be had in time, or it died under the request.
 * `started` says whether the code may have begun to run: code that may write to EPICS and may have
 * started is never re-run silently (it ends as `needs_review`).
 */
export class ExecutorUnavailableError extends ServiceError {
  override readonly code = 'executor_unavailable';
  override readonly kind = 'infrastructure';
  readonly started: boolean;
  constructor(message: string, options?: { cause?: unknown; started?: boolean }) {
    super(message, options);
    this.started = options?.started ?? false;
  }
}

/** Thrown when an approval decision is made on a job that was already decided (or expired). */
export class ApprovalConflictError extends ServiceError {
  override readonly code: string = 'approval_conflict';
  override readonly kind = 'invalid_input';
}

/** Thrown when an approval decision comes after the hold's deadline. */
export class ApprovalExpiredError extends ApprovalConflictError {
  override readonly code = 'approval_expired';
}

/** Thrown when an approval decision names a job that is not held. */
export class ApprovalNotFoundError extends ServiceError {
  override readonly code = 'approval_not_found';
  override readonly kind = 'invalid_input';
}

/** Thrown when a request id (or thread id) names no request (never submitted, or past its retention). */
export class RequestNotFoundError extends ServiceError {
  override readonly code = 'request_not_found';
  override readonly kind = 'invalid_input';
}

/** Thrown when a thread id is already taken by a request of another producer. */
export class ThreadConflictError extends ServiceError {
  override readonly code: string = 'thread_conflict';
  override readonly kind = 'invalid_input';
}

/** Thrown when a finished request is cancelled (nothing to cancel). */
export class RequestFinishedError extends ServiceError {
  override readonly code = 'request_finished';
  override readonly kind = 'invalid_input';
}

/** Thrown (HTTP API) when a process has as many open event streams and waits as it allows. */
export class TooManyStreamsError extends ServiceError {
  override readonly code = 'too_many_streams';
  override readonly kind = 'infrastructure';
}

/** Thrown (HTTP API, HTTP clients) when no valid bearer token was given. */
export class UnauthorizedError extends ServiceError {
  override readonly code = 'unauthorized';
  override readonly kind = 'invalid_input';
}

/** Thrown (HTTP API, HTTP clients) when the token's role may not do this. */
export class ForbiddenError extends ServiceError {
  override readonly code = 'forbidden';
  override readonly kind = 'invalid_input';
}

/** Thrown (HTTP API, HTTP clients) when a token sent too many calls; `retryAfterSeconds` says when to try again. */
export class RateLimitedError extends ServiceError {
  override readonly code = 'rate_limited';
  override readonly kind = 'infrastructure';
  constructor(
    message: string,
    readonly retryAfterSeconds?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Thrown (HTTP API, HTTP clients) when a body is larger than the API accepts. */
export class PayloadTooLargeError extends ServiceError {
  override readonly code = 'payload_too_large';
  override readonly kind = 'invalid_input';
}

/** Normalises anything thrown into an Error (graphile's coerceError). */
export function coerceError(err: unknown): Error {
  if (err instanceof Error) return err;
  if (typeof err === 'string') return new Error(err);
  try {
    return new Error(JSON.stringify(err));
  } catch {
    return new Error(String(err));
  }
}

/** The kind of any thrown value: ServiceErrors know theirs; anything else is an infrastructure error. */
export function errorKind(err: unknown): ErrorKind {
  return err instanceof ServiceError ? err.kind : 'infrastructure';
}
