/**
 * OpenTelemetry (src/telemetry/): one trace per request across every stage and process.
 *
 * - In one process, with the SDK's in-memory exporter: the stage spans of a request form one trace,
 *   each stage a child of the one that handed it over, the run a child of execution. A malformed
 *   `traceparent` in job data (hostile input) starts a new trace and the request succeeds; with
 *   telemetry off nothing is exported, nothing breaks, and a trace context in job data passes through.
 * - Across two worker processes (`pyexec worker generation analysis approval` and `pyexec worker
 *   execution result`, the real CLI), each exporting over real OTLP/HTTP to a receiver in this test:
 *   the real `openai` SDK against the fake LLM server, the approval hold, a Jupyter kernel lease and
 *   run. Every span shares one trace id, with the right parents, from both processes.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, afterEach, before, describe, it } from 'node:test';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { type Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startProducerApi } from '../../src/api/producer-server.js';
import { ApprovalService } from '../../src/approval/approval-service.js';
import { createToken } from '../../src/approval/tokens.js';
import { freePort } from '../../src/free-port.js';
import { QueueName } from '../../src/queues/envelope.js';
import { keyPrefix } from '../../src/redis/connection.js';
import { startTelemetry, type Telemetry } from '../../src/telemetry/index.js';
import { type FakeLlmServer, startFakeLlmServer } from '../support/fake-llm-server.js';
import { eventually, sampleRequest, spawnWorker, stopRedis, type TestBed, testBed } from '../support/harness.js';
import { iocModes, type SoftIocWithReadOnly, startIocWithReadOnlyPort } from '../support/kernel-support.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlp-receiver.js';

let bed: TestBed | undefined;
let telemetry: Telemetry | undefined;
const children: ChildProcess[] = [];
after(() => stopRedis());
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await bed?.close();
  bed = undefined;
  await telemetry?.shutdown();
  telemetry = undefined;
});

/** A request's first job, as it waits in Redis (no worker runs generation yet). */
async function generationJob(b: TestBed, requestId: string): Promise<{ job: Job; close(): Promise<void> }> {
  const connection = new Redis(b.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(QueueName.generation, { connection, prefix: keyPrefix(b.config.pyexec.redis.prefix) });
  const job = await queue.getJob(`${requestId}-generation-1`);
  assert.ok(job, 'the generation job waits');
  return {
    job,
    close: async () => {
      await queue.close();
      connection.disconnect();
    },
  };
}

const parentOf = (s: ReadableSpan) => s.parentSpanId ?? '';

/** The finished spans of one request (by the stage spans' request id attribute and their children). */
function spansOf(all: ReadableSpan[], requestId: string): ReadableSpan[] {
  const stages = all.filter((s) => s.attributes['pyexec.request_id'] === requestId);
  const traces = new Set(stages.map((s) => s.spanContext().traceId));
  return all.filter((s) => traces.has(s.spanContext().traceId));
}

function one(spans: ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((s) => s.name === name);
  assert.equal(found.length, 1, `one ${name} span (got ${found.length}: ${spans.map((s) => s.name).join(', ')})`);
  return found[0]!;
}

describe('tracing in one process (in-memory exporter)', () => {
  it('gives a request one trace: each stage a child of the one before, the run a child of execution', async () => {
    const memory = new InMemorySpanExporter();
    telemetry = await startTelemetry({ sample_ratio: 1 }, { exporter: memory });
    bed = await testBed();
    const lines: string[] = [];
    await bed.startFleet({ logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }) });
    const { requestId } = await bed.client.submit(sampleRequest());
    const res = await bed.client.wait(requestId, { timeoutMs: 30_000 });
    assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
    const spans = await eventually(
      async () => {
        const mine = spansOf(memory.getFinishedSpans(), requestId);
        return mine.some((s) => s.name === 'pyexec.result') ? mine : undefined;
      },
      10_000,
      'the result span',
    );
    assert.equal(new Set(spans.map((s) => s.spanContext().traceId)).size, 1, 'one trace id');
    const generation = one(spans, 'pyexec.generation');
    const analysis = one(spans, 'pyexec.analysis');
    const execution = one(spans, 'pyexec.execution');
    const run = one(spans, 'pyexec.local.run');
    const result = one(spans, 'pyexec.result');
    assert.equal(parentOf(generation), '', 'generation is the root (the producer sent no trace context)');
    assert.equal(parentOf(analysis), generation.spanContext().spanId);
    assert.equal(parentOf(execution), analysis.spanContext().spanId);
    assert.equal(parentOf(run), execution.spanContext().spanId);
    assert.equal(parentOf(result), execution.spanContext().spanId);
    assert.equal(generation.attributes['pyexec.outcome'], 'ok');
    assert.equal(run.attributes['pyexec.outcome'], 'ok');
    assert.equal(result.attributes['pyexec.request_id'], requestId);
    assert.equal(spans.length, 5, `no other spans: ${spans.map((s) => s.name).join(', ')}`);
    // Log lines name the trace: each stage's transition line carries its span's ids.
    const logged = lines
      .map(
        (l) =>
          JSON.parse(l) as { requestId?: string; stage?: string; outcome?: string; traceId?: string; spanId?: string },
      )
      .filter((l) => l.requestId === requestId && l.outcome !== undefined);
    for (const span of [generation, analysis, execution, result]) {
      const line = logged.find((l) => l.stage === span.attributes['pyexec.stage']);
      assert.ok(line, `a transition line for ${span.name}`);
      assert.equal(line.traceId, span.spanContext().traceId);
      assert.equal(line.spanId, span.spanContext().spanId);
    }
  });

  it("continues the producer's trace: a traceparent header on the HTTP API's submit is the generation span's parent", async () => {
    const memory = new InMemorySpanExporter();
    telemetry = await startTelemetry({ sample_ratio: 1 }, { exporter: memory });
    const producer = createToken('agent', 'producer');
    bed = await testBed({ pyexec: { approver: { tokens: [producer.entry] } } });
    await bed.startFleet();
    const api = await startProducerApi({ config: bed.config, redisUrl: bed.redisUrl, port: 0 });
    try {
      const [traceId, parentId] = ['4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7'];
      const res = await fetch(`${api.url}/v1/requests`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${producer.token}`,
          'content-type': 'application/json',
          traceparent: `00-${traceId}-${parentId}-01`,
          tracestate: 'vendor=x',
        },
        body: JSON.stringify(sampleRequest()),
      });
      assert.equal(res.status, 201);
      const { request_id: requestId } = (await res.json()) as { request_id: string };
      const done = await bed.client.wait(requestId, { timeoutMs: 30_000 });
      assert.equal(done.kind === 'finished' && done.response.status, 'succeeded');
      const spans = await eventually(
        async () => {
          const mine = spansOf(memory.getFinishedSpans(), requestId);
          return mine.some((s) => s.name === 'pyexec.result') ? mine : undefined;
        },
        10_000,
        'the result span',
      );
      const generation = one(spans, 'pyexec.generation');
      assert.equal(generation.spanContext().traceId, traceId, "the producer's trace");
      assert.equal(parentOf(generation), parentId, "a child of the producer's span");
      assert.equal(generation.spanContext().traceState?.get('vendor'), 'x', 'tracestate carried');
      assert.ok(spans.every((s) => s.spanContext().traceId === traceId));
    } finally {
      await api.close();
    }
  });

  it('starts a new trace for a malformed or hostile traceparent in job data, and the request succeeds', async () => {
    const memory = new InMemorySpanExporter();
    telemetry = await startTelemetry({ sample_ratio: 1 }, { exporter: memory });
    bed = await testBed();
    const hostile: unknown[] = [
      { traceparent: 'not-a-traceparent', tracestate: 'x' },
      { traceparent: '00-00000000000000000000000000000000-0000000000000000-01' },
      { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01${'x'.repeat(5000)}` },
      { traceparent: 42, tracestate: ['a'] },
      'traceparent',
    ];
    const ids: string[] = [];
    for (const value of hostile) {
      const { requestId } = await bed.client.submit(sampleRequest({ user_query: `q ${ids.length}` }));
      ids.push(requestId);
      // The job as a hostile producer wrote it, before any worker takes it.
      const { job, close } = await generationJob(bed, requestId);
      await job.updateData({ ...job.data, trace: value });
      await close();
    }
    await bed.startFleet();
    const seen = new Set<string>();
    for (const requestId of ids) {
      const res = await bed.client.wait(requestId, { timeoutMs: 30_000 });
      assert.equal(res.kind === 'finished' && res.response.status, 'succeeded', `request ${requestId} succeeded`);
      const spans = await eventually(
        async () => {
          const mine = spansOf(memory.getFinishedSpans(), requestId);
          return mine.some((s) => s.name === 'pyexec.result') ? mine : undefined;
        },
        10_000,
        'the result span',
      );
      const generation = one(spans, 'pyexec.generation');
      assert.equal(parentOf(generation), '', 'a new trace: generation is its root');
      const traceId = generation.spanContext().traceId;
      assert.match(traceId, /^[0-9a-f]{32}$/);
      assert.notEqual(traceId, '0'.repeat(32));
      assert.notEqual(traceId, 'a'.repeat(32), 'the overlong traceparent was not half-read');
      seen.add(traceId);
      assert.equal(new Set(spans.map((s) => s.spanContext().traceId)).size, 1);
    }
    assert.equal(seen.size, hostile.length, 'each request its own trace');
  });

  it('with the collector down: the request succeeds, the export failure is a warning, the fleet closes', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const port = await freePort();
    bed = await testBed({ pyexec: { telemetry: { otlp_endpoint: `http://127.0.0.1:${port}` } } });
    // The exporter retries a refused export with backoff for up to OTEL_EXPORTER_OTLP_TIMEOUT (10 s): short here.
    process.env['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT'] = '300';
    const fleet = await bed.startFleet({ logger }).finally(() => {
      delete process.env['OTEL_EXPORTER_OTLP_TRACES_TIMEOUT'];
    });
    assert.equal(trace.getTracer('x').startSpan('probe').isRecording(), true, 'tracing is on');
    const { requestId } = await bed.client.submit(sampleRequest());
    const res = await bed.client.wait(requestId, { timeoutMs: 30_000 });
    assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
    await fleet.close();
    const warned = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string })
      .filter((l) => /telemetry/.test(l.msg));
    assert.ok(warned.length > 0, `the failed export is logged: ${lines.join('')}`);
    assert.ok(
      warned.every((l) => l.level === 40),
      'as warnings',
    );
    assert.equal(trace.getTracer('x').startSpan('probe').isRecording(), false, 'closed: the SDK is gone');
  });

  it('with telemetry off: no SDK, no spans, the request succeeds, and a trace context in job data passes through', async () => {
    bed = await testBed();
    const traceparent = `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`;
    const { requestId } = await bed.client.submit(sampleRequest());
    const { job, close } = await generationJob(bed, requestId);
    await job.updateData({ ...job.data, trace: { traceparent } });
    await close();
    const fleet = await bed.startFleet();
    assert.equal(trace.getTracer('x').startSpan('probe').isRecording(), false, 'the no-op tracer answers');
    const res = await bed.client.wait(requestId, { timeoutMs: 30_000 });
    assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
    const handed = await fleet.queues.result.getJob(`${requestId}-result-1`);
    assert.deepEqual(handed?.data.trace, { traceparent }, 'the next stage gets the context the job came with');
  });
});

describe('tracing across two worker processes (OTLP/HTTP export)', () => {
  let ioc: SoftIocWithReadOnly;
  let llm: FakeLlmServer;
  let otlp: OtlpReceiver;
  before(async () => {
    [ioc, llm, otlp] = await Promise.all([startIocWithReadOnlyPort(), startFakeLlmServer(), startOtlpReceiver()]);
  });
  after(async () => {
    await Promise.allSettled([ioc?.stop(), llm?.close(), otlp?.close()]);
  });

  /** `pyexec worker <stages>` on the bed's config, as SREs run it (no metrics port), killed after the test. */
  function worker(b: TestBed, stages: string[]): ChildProcess {
    const child = spawnWorker(b, stages, { metricsPort: null });
    children.push(child);
    return child;
  }

  const stopped = (c: ChildProcess) =>
    new Promise<number | null>((resolve) => {
      if (c.exitCode !== null) return resolve(c.exitCode);
      c.once('exit', (code) => resolve(code));
      c.kill('SIGTERM');
    });

  function only(spans: ReceivedSpan[], name: string): ReceivedSpan {
    const found = spans.filter((s) => s.name === name);
    assert.equal(found.length, 1, `one ${name} span (got ${found.length}: ${spans.map((s) => s.name).join(', ')})`);
    return found[0]!;
  }

  it('one request is one trace: LLM call, approval hold, kernel lease and run, from both processes', async () => {
    llm.setDefaultReply('```python\nresults = {"answer": 6 * 7}\n```');
    bed = await testBed({
      execution: {
        code_generator: 'basic',
        generators: { basic: { model_id: 'trace-model', base_url: llm.openaiBaseUrl } },
        execution_method: 'container',
        modes: iocModes(ioc),
        container: { pool: { spares_per_mode: 1, lease_wait_ms: 120_000, spawn: { modes: ['read_only'] } } },
      },
      approval: { global_mode: 'selective', capabilities: { python_execution: { enabled: true, mode: 'all_code' } } },
      pyexec: { telemetry: { otlp_endpoint: otlp.url, service_name: 'pyexec-trace-test' } },
    });
    const front = worker(bed, ['generation', 'analysis', 'approval']);
    const back = worker(bed, ['execution', 'result']);
    const { requestId } = await bed.client.submit(sampleRequest());
    const held = await bed.client.wait(requestId, { timeoutMs: 60_000, returnOnApproval: true });
    assert.equal(held.kind, 'approval_required', `held for approval (${JSON.stringify(held)})`);
    if (held.kind !== 'approval_required') return;
    const connection = new Redis(bed.redisUrl, { maxRetriesPerRequest: null });
    const prefix = keyPrefix(bed.config.pyexec.redis.prefix);
    const queue = new Queue(QueueName.approval, { connection, prefix });
    try {
      await new ApprovalService(connection, prefix, queue).decide(held.holdJobId, {
        decision: 'approved',
        approver: 'alice',
      });
    } finally {
      await queue.close();
      connection.disconnect();
    }
    const done = await bed.client.wait(requestId, { timeoutMs: 120_000 });
    assert.equal(done.kind === 'finished' && done.response.status, 'succeeded', JSON.stringify(done));
    // SIGTERM: each process flushes its spans on the way out.
    assert.deepEqual(await Promise.all([stopped(front), stopped(back)]), [0, 0]);

    assert.ok(otlp.requests.length >= 2, 'each process sent at least one OTLP export request');
    assert.ok(otlp.requests.every((r) => r.contentType.startsWith('application/json')));
    const stageSpan = otlp.spans.find((s) => s.attributes['pyexec.request_id'] === requestId);
    assert.ok(stageSpan, 'the stage spans name the request');
    const spans = otlp.spans.filter((s) => s.traceId === stageSpan.traceId);
    const generation = only(spans, 'pyexec.generation');
    const chat = only(spans, 'chat trace-model');
    const analysis = only(spans, 'pyexec.analysis');
    const hold = only(spans, 'pyexec.approval_hold');
    const execution = only(spans, 'pyexec.execution');
    const lease = only(spans, 'pyexec.kernel.lease');
    const run = only(spans, 'pyexec.kernel.run');
    const result = only(spans, 'pyexec.result');
    assert.equal(spans.length, 8, `every span of the trace is one of these: ${spans.map((s) => s.name).join(', ')}`);
    // Parents: a chain of stages, each child of the one that handed it over.
    assert.equal(generation.parentSpanId, '', 'generation is the root');
    assert.equal(chat.parentSpanId, generation.spanId, 'the LLM call is a child of generation');
    assert.equal(analysis.parentSpanId, generation.spanId);
    assert.equal(hold.parentSpanId, analysis.spanId);
    assert.equal(execution.parentSpanId, hold.spanId, 'execution (other process) continues from the hold');
    assert.equal(lease.parentSpanId, execution.spanId);
    assert.equal(run.parentSpanId, execution.spanId);
    assert.equal(result.parentSpanId, execution.spanId);
    // From two processes: the front's spans carry its pid, the back's its own.
    const pid = (s: ReceivedSpan) => s.resource['process.pid'];
    for (const s of [generation, chat, analysis, hold]) assert.equal(pid(s), front.pid, `${s.name} from the front`);
    for (const s of [execution, lease, run, result]) assert.equal(pid(s), back.pid, `${s.name} from the back`);
    for (const s of spans) assert.equal(s.resource['service.name'], 'pyexec-trace-test');
    assert.deepEqual(generation.resource['pyexec.stages'], ['generation', 'analysis', 'approval']);
    // What each span says.
    assert.equal(chat.kind, 3, 'the LLM call is a client span');
    assert.equal(chat.attributes['gen_ai.provider.name'], 'openai');
    assert.equal(chat.attributes['gen_ai.request.model'], 'trace-model');
    assert.equal(chat.attributes['server.address'], '127.0.0.1');
    assert.ok(Number(chat.attributes['gen_ai.usage.output_tokens']) > 0, 'token usage recorded');
    assert.equal(llm.requests.length, 1, 'one LLM call');
    assert.equal(hold.attributes['pyexec.outcome'], 'approved');
    assert.ok(hold.startMs <= analysis.endMs + 50, 'the hold span starts when the job was held');
    assert.equal(lease.attributes['pyexec.mode'], 'read_only');
    assert.equal(typeof lease.attributes['pyexec.kernel.id'], 'string');
    assert.equal(run.attributes['pyexec.kernel.id'], lease.attributes['pyexec.kernel.id']);
    assert.equal(run.attributes['pyexec.outcome'], 'ok');
    assert.equal(execution.kind, 5, 'stage spans are consumer spans');
    assert.equal(result.attributes['pyexec.outcome'], 'succeeded');
    for (const s of spans) assert.equal(s.statusCode, 0, `${s.name} not an error`);
    assert.equal(otlp.refused, 0);
  });
});
