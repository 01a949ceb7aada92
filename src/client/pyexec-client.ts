import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { InvalidRequestError } from '../errors.js';
import { executionFolderFor } from '../executors/execution-folder.js';
import { ApprovalJob } from '../queues/approval.js';
import type { EnvelopeInput, Finding } from '../queues/envelope.js';
import { jobId } from '../queues/job-id.js';
import { createQueueSet, type QueueSet } from '../queues/queue-set.js';
import type { PythonExecutionResponse } from '../queues/result.js';
import { createRedis, keyPrefix, waitReady } from '../redis/connection.js';
import { PythonExecutionRequest, type PythonExecutionRequestInput, prepareRequest } from '../request.js';
import { type RequestEvent, type RequestSnapshot, RequestStore, TERMINAL } from '../store/request-store.js';

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
  };
}

export type WaitResult =
  | { readonly kind: 'finished'; readonly response: PythonExecutionResponse }
  | ApprovalRequired
  | { readonly kind: 'timeout'; readonly snapshot: RequestSnapshot | null };

export interface WaitOptions {
  /** Give up after this long (the request goes on). @defaultValue 600000 */
  timeoutMs?: number;
  /** Return as soon as the request is held for approval. @defaultValue false */
  returnOnApproval?: boolean;
  onEvent?: (event: RequestEvent) => void;
}

/** Thrown by `run` when the request is held: Osprey's approval interrupt, as a value to catch. */
export class ApprovalRequiredInterrupt extends Error {
  constructor(readonly approval: ApprovalRequired) {
    super(`approval required for request ${approval.requestId} (held job ${approval.holdJobId}): ${approval.reason}`);
    this.name = 'ApprovalRequiredInterrupt';
  }
}

export interface PyexecClientOptions {
  readonly redisUrl: string;
  readonly config: Config;
}

/**
 * The producer's client: submit a request, wait for its response (by reading the request's event
 * stream, not `waitUntilFinished`), see "approval required" with the held job's id, and continue
 * after a decision. State lives in Redis keyed by request and thread id, so a producer that
 * restarts picks up where it was (`resume(threadId)`).
 */
export class PyexecClient {
  private readonly redis: Redis;
  private readonly queues: QueueSet;
  readonly store: RequestStore;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: PyexecClientOptions) {
    this.redis = createRedis(options.redisUrl, 'producer');
    const prefix = keyPrefix(options.config.pyexec.redis.prefix);
    this.queues = createQueueSet(this.redis, prefix, options.config);
    this.store = new RequestStore(this.redis, prefix);
  }

  /** Creates a client and waits for its Redis connection (fails fast when Redis is unreachable). */
  static async connect(options: PyexecClientOptions): Promise<PyexecClient> {
    const client = new PyexecClient(options);
    try {
      await waitReady(client.redis);
    } catch (err) {
      await client.close();
      throw new Error(`cannot reach Redis at ${options.redisUrl}: ${(err as Error).message}`, { cause: err });
    }
    return client;
  }

  /**
   * Validates, records and enqueues a request. Everything is checked and serialised before
   * anything is written: invalid input throws InvalidRequestError (RequestTooLargeError over a
   * limit of `pyexec.request_limits`) and leaves no trace, its thread id included.
   *
   * Idempotent by thread id and content: the same request on the same thread returns the
   * existing request (`created: false`); a different request on a used thread is a new request,
   * and the thread then names it.
   */
  async submit(input: PythonExecutionRequestInput | unknown): Promise<SubmitResult> {
    const config = this.options.config;
    const { request, json, digest } = prepareRequest(input, config.pyexec.request_limits);
    const fresh = randomUUID();
    const threadId = request.thread_id ?? fresh;
    const { requestId, created } = await this.store.submit({
      requestId: fresh,
      threadId,
      digest,
      requestJson: json,
      ttlSeconds: config.pyexec.retention.finished_seconds,
    });
    if (created) await this.enqueue(requestId, threadId, request);
    else await this.ensureStarted(requestId);
    return { requestId, threadId, created };
  }

  private async enqueue(requestId: string, threadId: string, request: PythonExecutionRequest): Promise<void> {
    const config = this.options.config;
    const env: EnvelopeInput = {
      requestId,
      threadId,
      request,
      submittedAt: Date.now(),
      attempt: 1,
      executionMethod: request.execution_method ?? config.execution.execution_method,
      executionFolder: executionFolderFor(config.pyexec.execution_root, request.execution_folder_name, requestId),
      enqueuedAt: Date.now(),
    };
    await this.queues.generation.add('generation', env, { jobId: jobId(requestId, 'generation', 1) });
  }

  /** A duplicate submit of a request that never got its first job (a crash in submit) starts it. */
  private async ensureStarted(requestId: string): Promise<void> {
    const snap = await this.store.get(requestId);
    if (snap?.status !== 'queued') return;
    const existing = await this.queues.generation.getJob(jobId(requestId, 'generation', 1));
    if (existing) return;
    const request = PythonExecutionRequest.safeParse(await this.store.requestOf(requestId));
    if (request.success) await this.enqueue(requestId, snap.threadId, request.data);
  }

  async status(requestId: string): Promise<RequestSnapshot | null> {
    return this.store.get(requestId);
  }

  /** The request that a thread id names, if any. */
  async byThread(threadId: string): Promise<string | null> {
    return this.redis.get(this.store.threadKey(threadId));
  }

  async cancel(requestId: string): Promise<boolean> {
    return this.store.requestCancel(requestId);
  }

  /** Waits for the request to end (or to be held, with `returnOnApproval`). */
  async wait(requestId: string, options: WaitOptions = {}): Promise<WaitResult> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    const reader = this.redis.duplicate({ enableOfflineQueue: true, lazyConnect: false });
    reader.on('error', () => {});
    try {
      let from = '0';
      while (Date.now() < deadline) {
        const events = await RequestStore.readEvents(
          reader,
          this.store.eventsKey(requestId),
          from,
          Math.max(1, Math.min(2000, deadline - Date.now())),
        );
        for (const ev of events) {
          from = ev.id;
          options.onEvent?.(ev);
          if (ev.type === 'finished' || (ev.status && TERMINAL.includes(ev.status))) {
            const snap = await this.store.get(requestId);
            if (snap?.response) return { kind: 'finished', response: snap.response as PythonExecutionResponse };
          }
          if (options.returnOnApproval && ev.status === 'awaiting_approval' && ev.data?.['holdJobId']) {
            // Held now, unless a later event already moved it on.
            const snap = await this.store.get(requestId);
            if (snap?.status === 'awaiting_approval' && snap.hold) return await this.approvalOf(requestId, ev.data);
          }
        }
      }
      return { kind: 'timeout', snapshot: await this.store.get(requestId) };
    } finally {
      reader.disconnect();
    }
  }

  private async approvalOf(requestId: string, data: Record<string, unknown>): Promise<ApprovalRequired> {
    const held = ApprovalJob.safeParse((await this.queues.approval.getJob(String(data['holdJobId'])))?.data);
    const view = held.success
      ? {
          taskObjective: held.data.request.task_objective,
          code: held.data.code,
          analysisSha256: held.data.analysis.reportSha256,
          approvalReason: held.data.analysis.approvalReason,
          findings: held.data.analysis.findings,
        }
      : undefined;
    return {
      kind: 'approval_required',
      requestId,
      holdJobId: String(data['holdJobId']),
      deadline: Number(data['deadline']),
      reason: String(data['reason'] ?? ''),
      mode: String(data['mode'] ?? ''),
      risk: String(data['risk'] ?? ''),
      codeSha256: String(data['codeSha256'] ?? ''),
      ...(view ? { view } : {}),
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
    throw new Error(`request ${requestId} did not finish in time (status ${res.snapshot?.status ?? 'unknown'})`);
  }

  /** Continues waiting on the request of a thread id, e.g. after a producer restart. */
  async resume(threadId: string, options: WaitOptions = {}): Promise<WaitResult> {
    const requestId = await this.byThread(threadId);
    if (!requestId) throw new InvalidRequestError(`no request for thread ${threadId}`);
    return this.wait(requestId, options);
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queues.close();
      this.redis.disconnect();
    })();
    return this.closing;
  }
}
