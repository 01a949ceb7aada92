/**
 * When tracing is on, and where spans go: the config key, the standard OTEL_* variables, and the
 * switches that turn it off. Off loads no SDK and registers nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { parseConfig } from '../../../src/config.js';
import { ConfigError } from '../../../src/errors.js';
import { startTelemetry, tracesUrl } from '../../../src/telemetry/setup.js';
import { inStageSpan, traceCarrier } from '../../../src/telemetry/tracing.js';

const settings = (telemetry: Record<string, unknown> = {}) =>
  parseConfig({ pyexec: { telemetry } }, {}).pyexec.telemetry;

describe('telemetry settings', () => {
  it('is off with no endpoint anywhere', () => {
    assert.equal(tracesUrl(settings(), {}), undefined);
  });

  it('appends /v1/traces to the config endpoint and to OTEL_EXPORTER_OTLP_ENDPOINT, not to the traces endpoint', () => {
    assert.equal(tracesUrl(settings({ otlp_endpoint: 'http://c:4318' }), {}), 'http://c:4318/v1/traces');
    assert.equal(tracesUrl(settings({ otlp_endpoint: 'http://c:4318/' }), {}), 'http://c:4318/v1/traces');
    assert.equal(tracesUrl(settings({ otlp_endpoint: 'http://c:4318/v1/traces' }), {}), 'http://c:4318/v1/traces');
    assert.equal(
      tracesUrl(settings(), { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://o:1/base' }),
      'https://o:1/base/v1/traces',
    );
    assert.equal(
      tracesUrl(settings(), {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'https://o:1',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://t:2/custom',
      }),
      'https://t:2/custom',
    );
  });

  it('prefers the config to the variables, and OTEL_SDK_DISABLED / OTEL_TRACES_EXPORTER=none to both', () => {
    const s = settings({ otlp_endpoint: 'http://config:4318' });
    assert.equal(tracesUrl(s, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://env:4318' }), 'http://config:4318/v1/traces');
    assert.equal(tracesUrl(s, { OTEL_SDK_DISABLED: 'true' }), undefined);
    assert.equal(tracesUrl(s, { OTEL_SDK_DISABLED: 'TRUE' }), undefined);
    assert.equal(tracesUrl(s, { OTEL_TRACES_EXPORTER: 'none' }), undefined);
    assert.equal(tracesUrl(s, { OTEL_SDK_DISABLED: 'false' }), 'http://config:4318/v1/traces');
  });

  it('refuses a bad endpoint, an unknown key and a ratio out of range, naming the key', () => {
    for (const [telemetry, key] of [
      [{ otlp_endpoint: 'otel-collector:4318' }, 'pyexec.telemetry.otlp_endpoint'],
      [{ otlp_endpoint: 'grpc://c:4317' }, 'pyexec.telemetry.otlp_endpoint'],
      [{ sample_ratio: 1.5 }, 'pyexec.telemetry.sample_ratio'],
      [{ endpoint: 'http://c:4318' }, 'pyexec.telemetry.endpoint'],
    ] as const) {
      assert.throws(
        () => settings(telemetry),
        (err: Error) => err instanceof ConfigError && err.message.includes(key),
        JSON.stringify(telemetry),
      );
    }
  });
});

describe('startTelemetry', () => {
  it('off: registers nothing, and the hooks do nothing and inject nothing', async () => {
    const t = await startTelemetry(settings(), { env: {} });
    assert.equal(t.enabled, false);
    const span = trace.getTracer('probe').startSpan('probe');
    assert.equal(span.isRecording(), false);
    span.end();
    const out = await inStageSpan('analysis', 'j', { trace: { traceparent: 'garbage' } }, async () => traceCarrier());
    assert.equal(out, undefined, 'no context to hand over');
    await t.shutdown();
  });

  it('on: one SDK per process, shared, gone with its last user', async () => {
    const memory = new InMemorySpanExporter();
    const first = await startTelemetry(settings(), { exporter: memory });
    const second = await startTelemetry(settings({ otlp_endpoint: 'http://ignored:4318' }), { env: {} });
    assert.equal(first.enabled && second.enabled, true);
    const carried = await inStageSpan('generation', 'job-1', { requestId: 'r' }, async () => traceCarrier());
    assert.match(carried?.trace.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await second.shutdown();
    const still = trace.getTracer('probe').startSpan('still on');
    assert.equal(still.isRecording(), true, 'the first user still traces');
    still.end();
    // (The in-memory exporter forgets its spans when it shuts down: read them first.)
    assert.deepEqual(
      memory.getFinishedSpans().map((s) => s.name),
      ['pyexec.generation', 'still on'],
    );
    await first.shutdown();
    assert.equal(trace.getTracer('probe').startSpan('off').isRecording(), false, 'unregistered with the last user');
  });
});
