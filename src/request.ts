import { createHash } from 'node:crypto';
import { z } from 'zod';
import { InvalidRequestError, RequestTooLargeError } from './errors.js';
import { ExecutionMethod } from './modes.js';

/**
 * The request model of Osprey's `PythonExecutionRequest`, as producers send it (snake_case, as in
 * the reference), plus `thread_id` for idempotency. Unknown keys are refused so that a typo is an
 * error rather than a silently ignored field.
 */
export const PythonExecutionRequest = z
  .object({
    /** The user's original request. */
    user_query: z.string().min(1, 'user_query must not be empty').max(20_000),
    /** The step-specific goal. */
    task_objective: z.string().min(1, 'task_objective must not be empty').max(20_000),
    /** Expected results or success criteria; inserted into the prompt. */
    expected_results: z.record(z.string(), z.unknown()).default({}),
    /** Extra prompt sections. */
    capability_prompts: z.array(z.string().max(20_000)).max(100).default([]),
    /** Used in the execution folder's name; letters, digits, `_` and `-` only. */
    execution_folder_name: z
      .string()
      .min(1)
      .max(80)
      .regex(/^[A-Za-z0-9_-]+$/, 'execution_folder_name may hold only letters, digits, _ and -'),
    /** Data the code reads at run time as `context` (written to context.json). */
    capability_context_data: z.record(z.string(), z.unknown()).nullable().default(null),
    /** Idempotency key: the same thread id submitted twice is the same request. */
    thread_id: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[A-Za-z0-9_.:@/-]+$/, 'thread_id may hold only letters, digits and _ . : @ / -')
      .optional(),
    /** Override of `execution.execution_method`, honoured only where the config allows it. */
    execution_method: ExecutionMethod.optional(),
    /** Approval deadline for this request, within the configured maximum. */
    approval_timeout_seconds: z.number().int().positive().optional(),
    /** Osprey compatibility: accepted, carried, not interpreted. */
    retries: z.number().int().min(0).max(10).optional(),
    planning_mode: z.enum(['generator_driven', 'capability_driven']).optional(),
    structured_plan: z.record(z.string(), z.unknown()).nullable().optional(),
    session_context: z.record(z.string(), z.unknown()).nullable().optional(),
  })
  .strict();
export type PythonExecutionRequest = z.output<typeof PythonExecutionRequest>;
export type PythonExecutionRequestInput = z.input<typeof PythonExecutionRequest>;

/** What `prepareRequest` checks beyond the schema (`pyexec.request_limits`). */
export interface RequestLimits {
  readonly max_bytes: number;
  readonly max_depth: number;
  readonly max_keys: number;
}

/** A request ready to be written: validated, serialised once, and its content digest. */
export interface PreparedRequest {
  readonly request: PythonExecutionRequest;
  /** The request as stored in Redis and carried by the jobs. */
  readonly json: string;
  /** sha256 of the request's canonical JSON (keys sorted, thread_id left out): same request, same digest. */
  readonly digest: string;
}

const isPlainObject = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

const describeValue = (v: unknown): string =>
  typeof v === 'object' && v !== null ? (v.constructor?.name ?? 'object') : typeof v;

/**
 * Walks a producer's value without recursion (nesting 10,000 deep is an error, not a stack
 * overflow) and refuses what JSON cannot carry as it is: cycles, BigInt, functions, symbols,
 * non-finite numbers, class instances (a Date, a Map), undefined inside an array. Stops at the first
 * limit it meets. Object properties that are undefined are left out, as JSON.stringify does.
 */
function checkJsonValue(root: unknown, limits: RequestLimits): void {
  type Frame = { value: unknown; depth: number; path: string } | { leave: object };
  const stack: Frame[] = [{ value: root, depth: 0, path: 'request' }];
  const open = new Set<object>();
  let keys = 0;
  let bytes = 0;
  while (stack.length > 0) {
    const frame = stack.pop()!;
    if ('leave' in frame) {
      open.delete(frame.leave);
      continue;
    }
    const { value, depth, path } = frame;
    if (value === null || typeof value === 'boolean') continue;
    if (typeof value === 'string') {
      bytes += value.length;
      if (bytes > limits.max_bytes)
        throw new RequestTooLargeError(
          `the request is larger than ${limits.max_bytes} bytes as JSON (pyexec.request_limits.max_bytes)`,
        );
      continue;
    }
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) throw new InvalidRequestError(`${path}: ${value} is not a JSON number`);
      continue;
    }
    if (typeof value !== 'object') {
      throw new InvalidRequestError(`${path}: a ${typeof value} cannot be sent as JSON`);
    }
    if (open.has(value)) throw new InvalidRequestError(`${path}: the value refers to itself (a cycle)`);
    const isArray = Array.isArray(value);
    if (!isArray && !isPlainObject(value)) {
      throw new InvalidRequestError(`${path}: a ${describeValue(value)} is not plain JSON data; convert it first`);
    }
    if (depth + 1 > limits.max_depth) {
      throw new RequestTooLargeError(
        `${path}: nested deeper than ${limits.max_depth} levels (pyexec.request_limits.max_depth)`,
      );
    }
    open.add(value);
    stack.push({ leave: value });
    // Counted before the entries are listed: a sparse array of length 1e9 is refused, not allocated.
    keys += isArray ? (value as unknown[]).length : Object.keys(value).length;
    if (keys > limits.max_keys) {
      throw new RequestTooLargeError(
        `the request has more than ${limits.max_keys} keys and items (pyexec.request_limits.max_keys)`,
      );
    }
    const entries: [string, unknown][] = isArray
      ? Array.from(value as unknown[], (v, i) => [String(i), v])
      : Object.entries(value);
    for (const [k, v] of entries) {
      bytes += k.length + 2;
      if (v === undefined) {
        if (isArray) throw new InvalidRequestError(`${path}[${k}]: undefined cannot be sent as JSON`);
        continue;
      }
      stack.push({ value: v, depth: depth + 1, path: isArray ? `${path}[${k}]` : `${path}.${k}` });
    }
  }
}

/** JSON with object keys sorted at every level (the input is checked: no cycles, bounded depth). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const keys = Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Validates a producer's request and serialises it, before anything is written to Redis: JSON
 * data only, within `limits`, then the schema. Throws InvalidRequestError (RequestTooLargeError
 * for a limit) naming the problem; never a raw TypeError or RangeError.
 */
export function prepareRequest(input: unknown, limits: RequestLimits): PreparedRequest {
  try {
    checkJsonValue(input, limits);
    const parsed = PythonExecutionRequest.safeParse(input);
    if (!parsed.success) throw new InvalidRequestError(`invalid request:\n${z.prettifyError(parsed.error)}`);
    const json = JSON.stringify(parsed.data);
    if (Buffer.byteLength(json, 'utf8') > limits.max_bytes) {
      throw new RequestTooLargeError(
        `the request is larger than ${limits.max_bytes} bytes as JSON (pyexec.request_limits.max_bytes)`,
      );
    }
    const { thread_id: _thread, ...content } = parsed.data;
    const digest = createHash('sha256').update(canonicalJson(content), 'utf8').digest('hex');
    return { request: parsed.data, json, digest };
  } catch (err) {
    if (err instanceof InvalidRequestError) throw err;
    // A getter or proxy of the producer's own that throws while we read it.
    throw new InvalidRequestError(`the request cannot be read: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  }
}
