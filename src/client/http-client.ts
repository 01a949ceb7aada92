import type { PythonExecutionResponse } from '../queues/result.js';
import type { PythonExecutionRequestInput } from '../request.js';
import type { RequestSnapshot } from '../store/request-store.js';
import type { PyexecEvent } from './events.js';
import { errorFromProblem } from './problem.js';
import {
  type ApprovalRequired,
  ApprovalRequiredInterrupt,
  deliver,
  type StreamOptions,
  type SubmitResult,
  type WaitOptions,
  type WaitResult,
  WaitTimeoutError,
} from './pyexec-client.js';
import type { ApprovalRequiredView, RequestView, SubmitResultView, WaitResultView } from './wire.js';

export interface PyexecHttpClientOptions {
  /** The producer API's base URL, e.g. `http://127.0.0.1:8471`. */
  readonly url: string;
  /** A bearer token with the `producer` role. */
  readonly token: string;
  /** @defaultValue globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Long-poll length of each wait call (the server caps it). @defaultValue 30 */
  readonly pollSeconds?: number;
}

/**
 * The producer's client over the HTTP API: the same methods and results as PyexecClient (which
 * talks to Redis), for producers that have the API's URL and a token rather than the fleet's
 * Redis. Errors are the same classes, raised from the API's problem+json.
 */
export class PyexecHttpClient {
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: PyexecHttpClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  private async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.fetch(`${this.base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.options.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(signal ? { signal } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw errorFromProblem(parseOr(text, { status: res.status, detail: text || res.statusText }));
    return JSON.parse(text) as T;
  }

  async submit(request: PythonExecutionRequestInput | unknown): Promise<SubmitResult> {
    const r = await this.call<SubmitResultView>('POST', '/v1/requests', request);
    return { requestId: r.request_id, threadId: r.thread_id, created: r.created };
  }

  async status(requestId: string): Promise<RequestSnapshot | null> {
    try {
      return snapshotOf(await this.call<RequestView>('GET', `/v1/requests/${encodeURIComponent(requestId)}`));
    } catch (err) {
      if ((err as { code?: string }).code === 'request_not_found') return null;
      throw err;
    }
  }

  async byThread(threadId: string): Promise<string | null> {
    const page = await this.call<{ items: RequestView[] }>(
      'GET',
      `/v1/requests?thread_id=${encodeURIComponent(threadId)}&limit=1`,
    );
    return page.items[0]?.request_id ?? null;
  }

  async cancel(requestId: string): Promise<boolean> {
    try {
      await this.call('POST', `/v1/requests/${encodeURIComponent(requestId)}/cancel`);
      return true;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'request_not_found' || code === 'request_finished') return false;
      throw err;
    }
  }

  /** The request's events (server-sent events), reconnecting with Last-Event-ID until `finished`. */
  async *stream(requestId: string, options: StreamOptions = {}): AsyncGenerator<PyexecEvent, void, undefined> {
    let last = options.after;
    let failures = 0;
    while (!options.signal?.aborted) {
      let res: Response;
      try {
        res = await this.fetch(`${this.base}/v1/requests/${encodeURIComponent(requestId)}/events`, {
          headers: {
            authorization: `Bearer ${this.options.token}`,
            accept: 'text/event-stream',
            ...(last ? { 'last-event-id': last } : {}),
          },
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } catch (err) {
        if (options.signal?.aborted) return;
        if (++failures > 5) throw err;
        await new Promise((r) => setTimeout(r, 250 * failures));
        continue;
      }
      if (!res.ok) throw errorFromProblem(parseOr(await res.text(), { status: res.status }));
      try {
        for await (const ev of parseSse(res.body!)) {
          failures = 0;
          last = ev.id;
          yield ev;
          if (ev.type === 'finished') return;
        }
      } catch (err) {
        if (options.signal?.aborted) return;
        if (++failures > 5) throw err;
      }
      // The connection ended before `finished` (a proxy, a restart): resume after the last event.
    }
  }

  async wait(requestId: string, options: WaitOptions = {}): Promise<WaitResult> {
    const callbacks = options.onEvent || options.onStdout || options.onStderr || options.onDisplay;
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    if (callbacks) {
      // Follow the events for the callbacks, then read the outcome.
      const timeout = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
      const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
      for await (const ev of this.stream(requestId, { signal })) {
        deliver(ev, options);
        if (ev.type === 'finished') break;
        if (options.returnOnApproval && ev.type === 'approval_required') break;
      }
      if (options.signal?.aborted) throw options.signal.reason;
    }
    for (;;) {
      options.signal?.throwIfAborted();
      const seconds = Math.max(1, Math.min(this.options.pollSeconds ?? 30, Math.ceil((deadline - Date.now()) / 1000)));
      const r = await this.call<WaitResultView>(
        'GET',
        `/v1/requests/${encodeURIComponent(requestId)}/wait?timeout_seconds=${seconds}&return_on_approval=${Boolean(options.returnOnApproval)}`,
        undefined,
        options.signal,
      );
      if (r.kind === 'finished') {
        options.onResult?.(r.response as PythonExecutionResponse);
        return { kind: 'finished', response: r.response as PythonExecutionResponse };
      }
      if (r.kind === 'approval_required') return approvalOf(r);
      if (Date.now() >= deadline) return { kind: 'timeout', snapshot: r.request ? snapshotOf(r.request) : null };
    }
  }

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

  async resume(threadId: string, options: WaitOptions = {}): Promise<WaitResult> {
    const requestId = await this.byThread(threadId);
    if (!requestId) throw errorFromProblem({ code: 'request_not_found', detail: `no request for thread ${threadId}` });
    return this.wait(requestId, options);
  }

  /** Nothing to close (no connection is kept); here so the two clients are used alike. */
  async close(): Promise<void> {}
}

function parseOr<T>(text: string, fallback: T): T & Record<string, unknown> {
  try {
    return JSON.parse(text) as T & Record<string, unknown>;
  } catch {
    return fallback as T & Record<string, unknown>;
  }
}

function snapshotOf(v: RequestView): RequestSnapshot {
  return {
    requestId: v.request_id,
    threadId: v.thread_id,
    status: v.status,
    submittedAt: v.submitted_at,
    updatedAt: v.updated_at,
    cancelRequested: v.cancel_requested,
    ...(v.hold ? { hold: { holdJobId: v.hold.hold_job_id, deadline: v.hold.deadline } } : {}),
    ...(v.response ? { response: v.response } : {}),
    ...(v.submitted_by ? { submittedBy: v.submitted_by } : {}),
  };
}

function approvalOf(v: ApprovalRequiredView): ApprovalRequired {
  return {
    kind: 'approval_required',
    requestId: v.request_id,
    holdJobId: v.hold_job_id,
    deadline: v.deadline,
    reason: v.reason,
    mode: v.mode,
    risk: v.risk,
    codeSha256: v.code_sha256,
    ...(v.view
      ? {
          view: {
            taskObjective: v.view.task_objective,
            code: v.view.code,
            analysisSha256: v.view.analysis_sha256,
            approvalReason: v.view.approval_reason,
            findings: v.view.findings,
            writes: v.view.writes,
          },
        }
      : {}),
  };
}

/** Server-sent events of a response body: each message's `data` as a PyexecEvent. */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<PyexecEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data.length) yield JSON.parse(data.join('\n')) as PyexecEvent;
          data = [];
        } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        nl = buffer.indexOf('\n');
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
