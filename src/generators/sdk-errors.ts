import { CodeGenerationError, GeneratorConfigError, GeneratorUnavailableError, ServiceError } from '../errors.js';

/**
 * Translation of vendor SDK errors at the generator boundary. The OpenAI and Anthropic SDKs share one
 * error shape (APIError with `status`, and connection / timeout / user-abort subclasses), so one
 * mapping serves both; it decides by class and HTTP status, never by message text:
 * - 408, 409, 429, 5xx (529 overloaded too), timeouts, connection failures, our own abort
 *   → GeneratorUnavailableError (infrastructure: the fleet retries the stage with backoff);
 * - 401, 403, 402, 404 and the other 4xx → GeneratorConfigError (terminal, with a message saying what
 *   to fix: the key's environment variable, the model id, the base URL).
 */

type ErrorClass = abstract new (...args: never[]) => Error;

/** The error classes of one SDK (both SDKs expose them as statics of their client class). */
export interface SdkErrorClasses {
  APIError: ErrorClass;
  APIUserAbortError: ErrorClass;
  APIConnectionError: ErrorClass;
  APIConnectionTimeoutError: ErrorClass;
}

export interface ErrorContext {
  /** Generator name, e.g. `basic`. */
  generator: string;
  /** Who answered, for messages: e.g. `the OpenAI-compatible endpoint http://…/v1`. */
  endpoint: string;
  model: string;
  apiKeyEnv: string;
  timeoutMs: number;
  /** Strings that must never appear in a message (the API key). */
  secrets: readonly (string | undefined)[];
}

function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  return out;
}

/** Maps anything an SDK call threw to pyexec's taxonomy. ServiceErrors pass through unchanged. */
export function translateSdkError(
  err: unknown,
  sdk: SdkErrorClasses,
  ctx: ErrorContext,
  signal?: AbortSignal,
): ServiceError | unknown {
  if (err instanceof ServiceError) return err;
  const detail = scrub(err instanceof Error ? err.message : String(err), ctx.secrets);
  const where = `${ctx.generator}: ${ctx.endpoint}`;
  if (signal?.aborted || err instanceof sdk.APIUserAbortError) {
    return new GeneratorUnavailableError(`${ctx.generator}: generation aborted`, { cause: signal?.reason ?? err });
  }
  if (err instanceof sdk.APIConnectionTimeoutError) {
    return new GeneratorUnavailableError(`${where} did not answer within ${ctx.timeoutMs} ms`, { cause: err });
  }
  if (err instanceof sdk.APIConnectionError) {
    return new GeneratorUnavailableError(`${where} is unreachable: ${detail}`, { cause: err });
  }
  if (!(err instanceof sdk.APIError)) return err;
  const status = (err as { status?: number }).status;
  if (status === undefined || status === 408 || status === 409 || status === 429 || status >= 500) {
    const what = status === 429 ? 'is rate limiting' : `failed (HTTP ${status ?? 'unknown'})`;
    return new GeneratorUnavailableError(`${where} ${what}: ${detail}`, { cause: err });
  }
  if (status === 401 || status === 403) {
    return new GeneratorConfigError(
      `${where} refused the credentials (HTTP ${status}): check the API key in the environment variable ${ctx.apiKeyEnv}. ${detail}`,
      { cause: err },
    );
  }
  if (status === 404) {
    return new GeneratorConfigError(
      `${where} has no model '${ctx.model}' (HTTP 404): check model_id and base_url. ${detail}`,
      { cause: err },
    );
  }
  return new GeneratorConfigError(`${where} refused the request (HTTP ${status}): ${detail}`, { cause: err });
}

/** The error for a reply that holds no code: it counts against the generation budget. */
export function noCodeError(generator: string, reply: string): CodeGenerationError {
  return new CodeGenerationError(
    reply.trim() === ''
      ? `${generator}: the model returned an empty reply`
      : `${generator}: the model's reply holds no Python code (${reply.length} characters of prose)`,
  );
}
