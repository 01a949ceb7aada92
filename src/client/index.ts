/*
 * The producer's client package (`@pyexec/client`, packages/client): what another Node service
 * installs to ask pyexec for computations, over Redis (PyexecClient: the fleet's Redis URL and key
 * prefix) or over the producer HTTP API (PyexecHttpClient: its URL and a token).
 */
export {
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
export type { PythonExecutionResponse } from '../queues/result.js';
export type { PythonExecutionRequestInput } from '../request.js';
export { PythonExecutionRequest } from '../request.js';
export type { RequestSnapshot, RequestStatus } from '../store/request-store.js';
export type { PyexecEvent, PyexecEventType } from './events.js';
export { EVENT_TYPES } from './events.js';
export type { PyexecHttpClientOptions } from './http-client.js';
export { PyexecHttpClient, parseSse } from './http-client.js';
export type { Problem } from './problem.js';
export { errorFromProblem } from './problem.js';
export type {
  ApprovalRequired,
  FleetSettings,
  OutputCallbacks,
  PyexecClientOptions,
  StreamOptions,
  SubmitResult,
  WaitOptions,
  WaitResult,
} from './pyexec-client.js';
export { ApprovalRequiredInterrupt, ClientClosedError, PyexecClient, WaitTimeoutError } from './pyexec-client.js';
export type { ApprovalRequiredView, RequestView, SubmitResultView, WaitResultView } from './wire.js';
