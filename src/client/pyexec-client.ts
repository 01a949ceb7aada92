import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { InvalidRequestError, RequestNotFoundError, ThreadConflictError } from '../errors.js';
import { ApprovalJob } from '../queues/approval.js';
import { type EnvelopeInput, type Finding, readTrace, type WriteSite } from '../queues/envelope.js';
import { jobId } from '../queues/job-id.js';
import { QueueName } from '../queues/queue-name.js';
import { jobOptions } from '../queues/queue-set.js';
import type { PythonExecutionResponse } from '../queues/result.js';
import type { RedisConnection as Redis } from '../redis/connection.js';
import {
  createRedis,
  duplicateConnection,
  keyPrefix,
  type RedisClusterSettings,
  redactUrl,
  waitReady,
} from '../redis/connection.js';
import {
  PythonExecutionRequest,
  type PythonExecutionRequestInput,
  prepareRequest,
  type RequestLimits,
} from '../request.js';
import { executionFolderFor } from '../store/execution-folder.js';
import { type RequestEvent, type RequestSnapshot, RequestStore, TERMINAL } from '../store/request-store.js';
import { isAfter, type PyexecEvent, toPyexecEvent } from './events.js';

export interface SubmitResult {
  readonly requestId: string;
  readonly threadId: string;
  /** false when this same request was already submitted on the thread: the existing one is returned. */
  readonly created: boolean;
}

/** What a held request shows its producer: what the approver will see. */
export interface ApprovalRequired {
  readonly kind: 'approval_required';
  readonly requestId: string;
  readonly holdJobId: string;
  readonly deadline: number;
  readonly reason: string;
  readonly mode: string;
  readonly risk: string;
  readonly codeSha256: string;
  /** What the approver is shown, read from the held job (absent if it is already gone). */
  readonly view?: {
    readonly taskObjective: string;
    readonly code: string;
    readonly analysisSha256: string;
    readonly approvalReason: string;
    readonly findings: readonly Finding[];
    readonly writes: readonly WriteSite[];
  };
}

export type WaitResult =
  | { readonly kind: 'finished'; readonly response: PythonExecutionResponse }
  | ApprovalRequired
  | { readonly kind: 'timeout'; readonly snapshot: RequestSnapshot | null };

/** Live output and progress callbacks of `wait` and `run`. Each is called in the order of the events. */
export interface OutputCallbacks {
  /** Every event of the request, typed (stage changes, output, the hold, the end). */
  onEvent?: (event: PyexecEvent) => void;
  /** Each chunk the code prints on stdout, as it comes (coalesced by the fleet). */
  onStdout?: (text: string) => void;
  onStderr?: (text: string) => void;
  /** Rich output as it is displayed: a figure's MIME bundle (`image/png`, base64). */
  onDisplay?: (data: Record<string, unknown>, metadata: Record<string, unknown>) => void;
  /** The response, once the request has ended. */
  onResult?: (response: PythonExecutionResponse) => void;
}

export interface WaitOptions extends OutputCallbacks {
  /** Give up after this long (the request goes on). @defaultValue 600000 */
  timeoutMs?: number;
  /** Return as soon as the request is held for approval. @defaultValue false */
  returnOnApproval?: boolean;
  /** Stop waiting (the request goes on): the wait rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface StreamOptions {
  /** Start after this event id (a previous event's `id`); from the first event by default. */
  after?: string;
  /** Ends the iteration (it returns; no error). */
  signal?: AbortSignal;
}

/** Thrown by `run` when the request is held: Osprey's approval interrupt, as a value to catch. */
export class ApprovalRequiredInterrupt extends Error {
  constructor(readonly approval: ApprovalRequired) {
    super(`approval required for request ${approval.requestId} (held job ${approval.holdJobId}): ${approval.reason}`);
    this.name = 'ApprovalRequiredInterrupt';
  }
}

/** Thrown by `wait` (and ends `stream`) when the client is closed under it; the request goes on. */
export class ClientClosedError extends Error {
  constructor(readonly requestId: string) {
    super(
      `the client was closed while following request ${requestId}; the request goes on (resume with another client)`,
    );
    this.name = 'ClientClosedError';
  }
}

/** Thrown by `run` when the request did not end (nor was held) within its timeout; it goes on. */
export class WaitTimeoutError extends Error {
  constructor(
    readonly requestId: string,
    readonly status: string,
  ) {
    super(`request ${requestId} did not finish in time (status ${status})`);
    this.name = 'WaitTimeoutError';
  }
}

/**
 * What the client needs to know of the fleet. A fleet's whole `Config` fits (pass it as `config`);
 * a producer elsewhere passes only the key prefix, and the fleet places the request itself.
 */
export interface FleetSettings {
  readonly pyexec: {
    readonly redis: { readonly prefix: string; readonly cluster?: RedisClusterSettings | undefined };
    readonly retention: { readonly finished_seconds: number };
    readonly infra_attempts: number;
    readonly infra_backoff_ms: number;
    readonly execution_root?: string;
    /** What a request must meet before anything is written (`pyexec.request_limits`). */
    readonly request_limits?: RequestLimits;
  };
  readonly execution?: { readonly execution_method: 'container' | 'local' };
}

export interface PyexecClientOptions {
  /** The fleet's Redis (redis:// or rediss://, with its password). One of redisUrl and redis is needed. */
  readonly redisUrl?: string;
  /** A connection of your own (left open by `close`). */
  readonly redis?: Redis;
  /** A Redis Cluster's seed nodes instead of `redisUrl` (`pyexec.redis.cluster`; from `config` when given). */
  readonly cluster?: RedisClusterSettings;
  /** The fleet's key prefix (`pyexec.redis.prefix`). @defaultValue "pyexec" */
  readonly prefix?: string;
  /** How long request records and thread ids are kept (`pyexec.retention.finished_seconds`). @defaultValue 604800 */
  readonly retentionSeconds?: number;
  /** The fleet's config: when given, the prefix, retention and job options come from it. */
  readonly config?: FleetSettings;
}

const DEFAULTS = {
  prefix: 'pyexec',
  retentionSeconds: 604_800,
  attempts: 3,
  backoffMs: 1000,
  // pyexec.request_limits' defaults.
  requestLimits: { max_bytes: 1_048_576, max_depth: 64, max_keys: 100_000 } satisfies RequestLimits,
};

/**
 * The producer's client: submit a request, follow it (its event stream: stage changes, live
 * output, the hold, the end), wait for its response, see "approval required" with what the
 * approver sees, and continue after a decision. State lives in Redis keyed by request and thread
 * id, so a producer that restarts picks up where it was (`resume(threadId)`). Needs only the
 * fleet's Redis and key prefix.
 */
export class PyexecClient {
  private readonly redis: Redis;
  private readonly ownsRedis: boolean;
  /** Aborted by close(): every wait and stream of this client ends with it (none rides on forever). */
  private readonly lifetime = new AbortController();
  private readonly generation: Queue;
  private readonly approval: Queue;
  private readonly settings: FleetSettings;
  readonly store: RequestStore;
  private closing: Promise<void> | undefined;

  constructor(options: PyexecClientOptions) {
    const cluster = clusterOf(options);
    if (!options.redis && !options.redisUrl && !cluster) {
      throw new InvalidRequestError('PyexecClient: give redisUrl, cluster or redis');
    }
    this.redis = options.redis ?? createRedis(options.redisUrl ?? '', 'producer', {}, cluster);
    this.ownsRedis = !options.redis;
    this.settings = options.config ?? {
      pyexec: {
        redis: { prefix: options.prefix ?? DEFAULTS.prefix },
        retention: { finished_seconds: options.retentionSeconds ?? DEFAULTS.retentionSeconds },
        infra_attempts: DEFAULTS.attempts,
        infra_backoff_ms: DEFAULTS.backoffMs,
      },
    };
    const prefix = keyPrefix(options.config ? options.config.pyexec.redis.prefix : (options.prefix ?? DEFAULTS.prefix));
    const queue = (name: string, stage: 'generation' | 'approval') => {
      const q = new Queue(name, {
        connection: this.redis,
        prefix,
        defaultJobOptions: jobOptions(this.settings, stage),
      });
      q.on('error', () => {});
      return q;
    };
    this.generation = queue(QueueName.generation, 'generation');
    this.approval = queue(QueueName.approval, 'approval');
    this.store = new RequestStore(this.redis, prefix);
  }

  /** Creates a client and waits for its Redis connection (fails fast when Redis is unreachable). */
  static async connect(options: PyexecClientOptions): Promise<PyexecClient> {
    const client = new PyexecClient(options);
    try {
      await waitReady(client.redis);
    } catch (err) {
      await client.close();
      const url = options.redisUrl ?? clusterOf(options)?.nodes.join(',');
      const where = url ? ` at ${redactUrl(url)}` : '';
      throw new Error(`cannot reach Redis${where}: ${(err as Error).message}`, { cause: err });
    }
    return client;
  }

  private get retentionSeconds(): number {
    return this.settings.pyexec.retention.finished_seconds;
  }

  /**
   * Validates, records and enqueues a request. Everything is checked and serialised before
   * anything is written: invalid input throws InvalidRequestError (RequestTooLargeError over a
   * limit of `pyexec.request_limits`) and leaves no trace, its thread id included.
   *
   * Idempotent by thread id and content: the same request on the same thread returns the
   * existing request (`created: false`); a different request on a used thread is a new request,
   * and the thread then names it. A thread whose request another submitter made (`submittedBy`,
   * the HTTP API's token name) is refused with ThreadConflictError, and nothing is written.
   */
  async submit(
    input: PythonExecutionRequestInput | unknown,
    meta: {
      submittedBy?: string;
      /** The producer's W3C trace context (`propagation.inject` of @opentelemetry/api fills one): the
       * request's trace continues it. Malformed values are ignored by the fleet. */
      trace?: { traceparent?: string | undefined; tracestate?: string | undefined };
    } = {},
  ): Promise<SubmitResult> {
    const limits = this.settings.pyexec.request_limits ?? DEFAULTS.requestLimits;
    const { request, json, digest } = prepareRequest(input, limits);
    const fresh = randomUUID();
    const threadId = request.thread_id ?? fresh;
    const submittedAt = Date.now();
    const { requestId, created, conflict } = await this.store.submit({
      requestId: fresh,
      threadId,
      digest,
      requestJson: json,
      ttlSeconds: this.retentionSeconds,
      submittedBy: meta.submittedBy,
      submittedAt,
    });
    if (conflict) throw new ThreadConflictError(`thread id ${threadId} is taken by another producer's request`);
    if (created) await this.enqueue(requestId, threadId, request, submittedAt, readTrace(meta.trace));
    else await this.ensureStarted(requestId);
    return { requestId, threadId, created };
  }

  private async enqueue(
    requestId: string,
    threadId: string,
    request: PythonExecutionRequest,
    submittedAt: number,
    trace?: { traceparent: string; tracestate?: string },
  ): Promise<void> {
    const { execution } = this.settings;
    const root = this.settings.pyexec.execution_root;
    // With the fleet's config the client places the request; without it, the generation stage does.
    const placement =
      execution && root
        ? {
            executionMethod: request.execution_method ?? execution.execution_method,
            executionFolder: executionFolderFor(root, request.execution_folder_name, requestId, new Date(submittedAt)),
          }
        : {};
    const env: Omit<EnvelopeInput, 'executionMethod' | 'executionFolder'> = {
      requestId,
      threadId,
      request,
      submittedAt,
      attempt: 1,
      enqueuedAt: Date.now(),
      ...(trace ? { trace } : {}),
    };
    await this.generation.add('generation', { ...env, ...placement }, { jobId: jobId(requestId, 'generation', 1) });
  }

  /** A duplicate submit of a request that never got its first job (a crash in submit) starts it. */
  private async ensureStarted(requestId: string): Promise<void> {
    const snap = await this.store.get(requestId);
    if (snap?.status !== 'queued') return;
    const existing = await this.generation.getJob(jobId(requestId, 'generation', 1));
    if (existing) return;
    const request = PythonExecutionRequest.safeParse(await this.store.requestOf(requestId));
    if (request.success) await this.enqueue(requestId, snap.threadId, request.data, snap.submittedAt);
  }

  async status(requestId: string): Promise<RequestSnapshot | null> {
    return this.store.get(requestId);
  }

  /** The request that a thread id names, if any. */
  async byThread(threadId: string): Promise<string | null> {
    return this.redis.get(this.store.threadKey(threadId));
  }

  /** Asks the fleet to cancel (a running execution is interrupted); false when there is no such request. */
  async cancel(requestId: string): Promise<boolean> {
    return this.store.requestCancel(requestId);
  }

  /**
   * The request's events, typed, from the first one (or after `options.after`) to its `finished`
   * event, live: stage changes, stdout/stderr chunks and displayed figures while the code runs, the
   * hold, the end. A consumer that stops reading (break, or the signal) ends it.
   */
  async *stream(requestId: string, options: StreamOptions = {}): AsyncGenerator<PyexecEvent, void, undefined> {
    for await (const raw of this.rawEvents(requestId, options.after ?? '0', options.signal)) {
      const ev = toPyexecEvent(raw);
      if (ev) yield ev;
      if (ev?.type === 'finished') return;
    }
  }

  /**
   * Stored events, blocking on a dedicated connection; ends when the signal aborts. A lost Redis
   * connection is waited out (see `riding`): the events are in Redis, and reading goes on from the
   * last one seen once it is back.
   */
  private async *rawEvents(requestId: string, from: string, caller?: AbortSignal): AsyncGenerator<RequestEvent> {
    const signal = caller ? AbortSignal.any([caller, this.lifetime.signal]) : this.lifetime.signal;
    let exists: number;
    try {
      exists = await riding(() => this.redis.exists(this.store.key(requestId)), signal);
    } catch (err) {
      if (signal?.aborted) return;
      throw err;
    }
    if (!exists) throw new RequestNotFoundError(`no request ${requestId}`);
    const reader = duplicateConnection(this.redis);
    const stop = () => reader.disconnect();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      let last = from;
      while (!signal?.aborted) {
        let events: RequestEvent[];
        try {
          events = await riding(
            () => RequestStore.readEvents(reader, this.store.eventsKey(requestId), last, 1000),
            signal,
          );
        } catch (err) {
          if (signal?.aborted) return;
          throw err;
        }
        for (const ev of events) {
          if (!isAfter(ev.id, last)) continue;
          last = ev.id;
          yield ev;
        }
      }
    } finally {
      signal?.removeEventListener('abort', stop);
      reader.disconnect();
    }
  }

  /**
   * Waits for the request to end (or to be held, with `returnOnApproval`), calling the output
   * callbacks as events come. Rejects with the signal's reason when `signal` aborts.
   */
  async wait(requestId: string, options: WaitOptions = {}): Promise<WaitResult> {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 600_000);
    const signal = AbortSignal.any([...(options.signal ? [options.signal] : []), timeout, this.lifetime.signal]);
    for await (const ev of this.stream(requestId, { signal })) {
      deliver(ev, options);
      if (ev.type === 'finished') {
        const snap = await riding(() => this.store.get(requestId), signal);
        if (snap?.response) {
          const response = snap.response as PythonExecutionResponse;
          options.onResult?.(response);
          return { kind: 'finished', response };
        }
      }
      if (options.returnOnApproval && ev.type === 'approval_required') {
        // Held now, unless a later event already moved it on.
        const held = await riding(() => this.approvalRequired(requestId), signal);
        if (held) return held;
      }
    }
    if (options.signal?.aborted) throw options.signal.reason;
    if (this.lifetime.signal.aborted) throw new ClientClosedError(requestId);
    const snapshot = await this.store.get(requestId);
    // It may have ended just as the time ran out.
    if (snapshot && TERMINAL.includes(snapshot.status) && snapshot.response)
      return { kind: 'finished', response: snapshot.response as PythonExecutionResponse };
    return { kind: 'timeout', snapshot };
  }

  /** What a held request shows its producer (what the approver sees), or null when it is not held
   * (or a person has decided and the fleet is about to move it on). */
  async approvalRequired(requestId: string): Promise<ApprovalRequired | null> {
    const snap = await this.store.get(requestId);
    if (snap?.status !== 'awaiting_approval' || !snap.hold) return null;
    const job = await this.approval.getJob(snap.hold.holdJobId);
    // A decided hold is promoted out of `delayed` at once; its request moves on when the approval
    // worker takes it. Until then it is no longer waiting for a person.
    if (job && (await job.getState()) !== 'delayed') return null;
    const held = ApprovalJob.safeParse(job?.data);
    if (!held.success) {
      return {
        kind: 'approval_required',
        requestId,
        holdJobId: snap.hold.holdJobId,
        deadline: snap.hold.deadline,
        reason: '',
        mode: '',
        risk: '',
        codeSha256: '',
      };
    }
    const { analysis } = held.data;
    return {
      kind: 'approval_required',
      requestId,
      holdJobId: snap.hold.holdJobId,
      deadline: held.data.deadline,
      reason: analysis.approvalReason,
      mode: analysis.mode,
      risk: analysis.risk,
      codeSha256: held.data.codeSha256,
      view: {
        taskObjective: held.data.request.task_objective,
        code: held.data.code,
        analysisSha256: analysis.reportSha256,
        approvalReason: analysis.approvalReason,
        findings: analysis.findings,
        writes: analysis.writes,
      },
    };
  }

  /**
   * Osprey's `handle_service_with_interrupts`: submit and wait; resolves with the response, or
   * throws ApprovalRequiredInterrupt when the request is held. Call `resume(threadId)` after the
   * decision (from this process or another one) to get the response.
   */
  async run(
    input: PythonExecutionRequestInput,
    options: Omit<WaitOptions, 'returnOnApproval'> = {},
  ): Promise<PythonExecutionResponse> {
    const { requestId } = await this.submit(input);
    const res = await this.wait(requestId, { ...options, returnOnApproval: true });
    if (res.kind === 'finished') return res.response;
    if (res.kind === 'approval_required') throw new ApprovalRequiredInterrupt(res);
    throw new WaitTimeoutError(requestId, res.snapshot?.status ?? 'unknown');
  }

  /** Continues waiting on the request of a thread id, e.g. after a producer restart. */
  async resume(threadId: string, options: WaitOptions = {}): Promise<WaitResult> {
    const requestId = await this.byThread(threadId);
    if (!requestId) throw new RequestNotFoundError(`no request for thread ${threadId}`);
    return this.wait(requestId, options);
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      this.lifetime.abort();
      await Promise.allSettled([this.generation.close(), this.approval.close()]);
      if (this.ownsRedis) this.redis.disconnect();
    })();
    return this.closing;
  }
}

/** Errors of a lost or not yet restored Redis connection (as opposed to an answer of Redis). */
export function isConnectionError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string } | null;
  if (!e) return false;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (e.code && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTCONN'].includes(e.code))
    return true;
  return /Stream isn't writeable|Connection is closed|max retries per request|^LOADING |ECONNREFUSED|ECONNRESET/i.test(
    e.message ?? '',
  );
}

/**
 * `promise`, or the signal's reason as soon as it aborts. ioredis leaves a command pending forever
 * when its connection is closed while it was reconnecting, so a wait must not hang on one.
 */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Runs `op` again while it fails for a lost Redis connection, with backoff (50 ms doubling to 2 s),
 * until it works or `signal` aborts (then the last error is thrown). Any other error is thrown at
 * once. A waiter rides through a Redis restart this way instead of failing.
 */
export async function riding<T>(op: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  let delay = 50;
  for (;;) {
    try {
      return await (signal ? abortable(op(), signal) : op());
    } catch (err) {
      if (!isConnectionError(err) || signal?.aborted) throw err;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, delay);
        signal?.addEventListener('abort', done, { once: true });
      });
      if (signal?.aborted) throw err;
      delay = Math.min(2000, delay * 2);
    }
  }
}

/** Calls the callbacks an event is for. A callback that throws does not stop the wait. */
export function deliver(ev: PyexecEvent, cb: OutputCallbacks): void {
  const call = (fn: (() => void) | undefined) => {
    try {
      fn?.();
    } catch {
      // The producer's callback is its own business.
    }
  };
  call(cb.onEvent && (() => cb.onEvent!(ev)));
  if (ev.type === 'stdout') call(cb.onStdout && (() => cb.onStdout!(ev.text)));
  else if (ev.type === 'stderr') call(cb.onStderr && (() => cb.onStderr!(ev.text)));
  else if (ev.type === 'display') call(cb.onDisplay && (() => cb.onDisplay!(ev.data, ev.metadata)));
}

/** The cluster a client connects to: the fleet config's when one is given, else its own option. */
function clusterOf(options: PyexecClientOptions): RedisClusterSettings | undefined {
  return options.config ? options.config.pyexec.redis.cluster : options.cluster;
}
