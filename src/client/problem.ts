import { z } from 'zod';
import {
  ForbiddenError,
  InvalidRequestError,
  PayloadTooLargeError,
  RateLimitedError,
  RequestFinishedError,
  RequestNotFoundError,
  RequestTooLargeError,
  ServiceError,
  ThreadConflictError,
  TooManyStreamsError,
  UnauthorizedError,
} from '../errors.js';

/**
 * Errors over HTTP: RFC 9457 problem details (`application/problem+json`), one `type` per error
 * code, and the code itself in `code` — the same codes as the clients' error classes
 * (src/errors.ts), so an HTTP client raises the class the Redis client would have thrown.
 */
export const Problem = z.object({
  type: z.string().describe('urn:pyexec:problem:<code>'),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string(),
  /** For validation errors: each problem with its path. */
  errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  /** For 429: seconds until a call may succeed. */
  retry_after_seconds: z.number().optional(),
});
export type Problem = z.output<typeof Problem>;

export const PROBLEM_TYPE = 'application/problem+json';

const TITLES: Record<string, string> = {
  request_invalid: 'The request is not valid',
  request_too_large: 'The request is over a limit (size, nesting or keys)',
  request_not_found: 'No such request',
  request_finished: 'The request has already ended',
  thread_conflict: 'The thread id belongs to another producer',
  unauthorized: 'A valid bearer token is required',
  forbidden: 'The token may not do this',
  rate_limited: 'Too many calls',
  payload_too_large: 'The body is too large',
  too_many_streams: 'Too many open streams',
  internal_error: 'Internal error',
};

/** HTTP status of an error code. */
const STATUS: Record<string, number> = {
  request_invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  request_not_found: 404,
  request_finished: 409,
  thread_conflict: 409,
  payload_too_large: 413,
  request_too_large: 413,
  rate_limited: 429,
  too_many_streams: 503,
};

export function problemOf(code: string, detail: string, extra: Partial<Problem> = {}): Problem {
  const status = STATUS[code] ?? (code === 'internal_error' ? 500 : 400);
  return { type: `urn:pyexec:problem:${code}`, title: TITLES[code] ?? code, status, detail, code, ...extra };
}

/** The problem of anything a route threw (Fastify's own errors included). */
export function problemFromError(err: unknown): Problem {
  if (err instanceof RateLimitedError)
    return problemOf(err.code, err.message, {
      ...(err.retryAfterSeconds !== undefined ? { retry_after_seconds: err.retryAfterSeconds } : {}),
    });
  if (err instanceof ServiceError) {
    if (STATUS[err.code] !== undefined) return problemOf(err.code, err.message);
    if (err.kind === 'invalid_input') return { ...problemOf(err.code, err.message), status: 400 };
    return problemOf('internal_error', 'internal error');
  }
  const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || e.statusCode === 413)
    return problemOf('payload_too_large', e.message ?? 'the body is too large');
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return problemOf('request_invalid', e.message ?? 'bad request');
  return problemOf('internal_error', 'internal error');
}

/** The error class of a problem (the HTTP clients throw it). */
export function errorFromProblem(p: Partial<Problem> & { code?: string; detail?: string }): Error {
  const message = p.detail ?? p.title ?? p.code ?? 'error';
  switch (p.code) {
    case 'request_invalid':
      return new InvalidRequestError(message);
    case 'request_too_large':
      return new RequestTooLargeError(message);
    case 'request_not_found':
      return new RequestNotFoundError(message);
    case 'request_finished':
      return new RequestFinishedError(message);
    case 'thread_conflict':
      return new ThreadConflictError(message);
    case 'unauthorized':
      return new UnauthorizedError(message);
    case 'forbidden':
      return new ForbiddenError(message);
    case 'rate_limited':
      return new RateLimitedError(message, p.retry_after_seconds);
    case 'payload_too_large':
      return new PayloadTooLargeError(message);
    case 'too_many_streams':
      return new TooManyStreamsError(message);
    default:
      return new ServiceError(`${p.status ?? ''} ${message}`.trim());
  }
}
