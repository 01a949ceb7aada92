import {
  type Attributes,
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { readTrace } from '../queues/envelope.js';

/**
 * The hooks the fleet calls, on @opentelemetry/api alone. Without a registered SDK (telemetry
 * off: see setup.ts) the API's no-op tracer, context manager and propagator answer, so every hook
 * costs a few function calls and creates nothing.
 *
 * A request is one trace. Its job data carries the W3C trace context of the stage that handed it
 * over (`trace: {traceparent, tracestate}` in the envelope), so a stage in another process continues
 * the trace as a child of the previous stage's span. A missing or malformed `traceparent` (job data
 * is untrusted) starts a new trace; it never fails the job.
 */

/** Span names: one per stage, and the children inside them. */
export const SPAN = {
  generation: 'pyexec.generation',
  analysis: 'pyexec.analysis',
  approval: 'pyexec.approval_hold',
  execution: 'pyexec.execution',
  result: 'pyexec.result',
  kernelLease: 'pyexec.kernel.lease',
  kernelRun: 'pyexec.kernel.run',
  localRun: 'pyexec.local.run',
} as const;

/** The W3C trace context as job data carries it. */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

const tracer = (): Tracer => trace.getTracer('pyexec');

const text = (v: unknown, max = 200): string | undefined => (typeof v === 'string' && v.length <= max ? v : undefined);

/** The trace context in untrusted job data: only well-formed strings are read (the rest is ignored). */
function carrierOf(data: unknown): TraceCarrier {
  return readTrace(data && typeof data === 'object' ? (data as { trace?: unknown }).trace : undefined) ?? {};
}

/**
 * Runs a stage's work in its span: a child of the context in the job's data (the previous stage),
 * or the root of a new trace. The span is active while `work` runs, so hand-offs, LLM and kernel
 * calls made from it are its children. `startTime` (ms): when the span begins, if not now (the
 * approval hold begins when the job was held). The span's `pyexec.outcome` is what `work` returns.
 */
export async function inStageSpan<T>(
  stage: keyof typeof SPAN,
  jobId: string | undefined,
  data: unknown,
  work: () => Promise<T>,
): Promise<T> {
  const parent = propagation.extract(context.active(), carrierOf(data));
  const d = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>;
  const attributes: Attributes = { 'pyexec.stage': stage };
  const requestId = text(d['requestId']);
  if (requestId) attributes['pyexec.request_id'] = requestId;
  const threadId = text(d['threadId']);
  if (threadId) attributes['pyexec.thread_id'] = threadId;
  if (typeof d['attempt'] === 'number') attributes['pyexec.attempt'] = d['attempt'];
  if (jobId) attributes['messaging.message.id'] = jobId;
  const enqueuedAt =
    typeof d['enqueuedAt'] === 'number' && Number.isFinite(d['enqueuedAt']) ? d['enqueuedAt'] : undefined;
  // The hold is the wait: its span starts when the job was held (never in the future).
  const startTime = stage === 'approval' && enqueuedAt !== undefined ? Math.min(enqueuedAt, Date.now()) : undefined;
  const span = tracer().startSpan(
    SPAN[stage],
    { kind: SpanKind.CONSUMER, attributes, ...(startTime !== undefined ? { startTime } : {}) },
    parent,
  );
  if (enqueuedAt !== undefined && span.isRecording())
    span.setAttribute('pyexec.queue_wait_ms', Math.max(0, Date.now() - enqueuedAt));
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      const result = await work();
      if (typeof result === 'string') span.setAttribute('pyexec.outcome', result);
      return result;
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * The trace context to put in the next stage's job data: the active span's, or `undefined` when
 * there is none to give (telemetry off; outside a stage). Then the job keeps the context it came
 * with, so a trace passes through a process that does not trace.
 */
export function traceCarrier(): { trace: TraceCarrier } | undefined {
  const carrier: TraceCarrier = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? { trace: carrier } : undefined;
}

/** The active span's ids for log lines (`traceId`, `spanId`), when it is recorded; else nothing. */
export function traceIds(): { traceId: string; spanId: string } | undefined {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return undefined;
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}

/**
 * Runs `work` in a child span of the active one (an LLM call, a kernel run). The span records an
 * exception and ERROR status when `work` throws; `work` may add attributes through the span.
 */
export function inSpan<T>(
  name: string,
  attributes: Attributes,
  work: (span: Span) => Promise<T>,
  kind: SpanKind = SpanKind.INTERNAL,
  /** Record the error's message and stack (false: only its class, for errors that may carry secrets). */
  errorDetail = true,
): Promise<T> {
  return tracer().startActiveSpan(name, { kind, attributes }, async (span) => {
    try {
      return await work(span);
    } catch (err) {
      failed(span, err, errorDetail);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** A child span of the active one that the caller ends (see `endSpan`): for work that spans a try/finally. */
export function startSpan(name: string, attributes: Attributes = {}, kind: SpanKind = SpanKind.INTERNAL): Span {
  return tracer().startSpan(name, { kind, attributes });
}

/** Ends a span from `startSpan`, as failed when `err` is given. */
export function endSpan(span: Span, err?: unknown): void {
  if (err !== undefined) failed(span, err);
  span.end();
}

function failed(span: Span, err: unknown, detail = true): void {
  if (!span.isRecording()) return;
  const e = err instanceof Error ? err : new Error(String(err));
  span.setAttribute('error.type', e.name || 'Error');
  if (!detail) {
    span.setStatus({ code: SpanStatusCode.ERROR });
    return;
  }
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message.slice(0, 500) });
}

export { SpanKind };
