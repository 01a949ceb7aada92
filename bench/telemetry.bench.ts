/**
 * What tracing costs (issue 17, item 5), side by side in one run, interleaved:
 *
 * 1. the whole pipeline in one process on a real Redis (generation → analysis → execution → result,
 *    fake generator, analyzer and executor: what is left is the fleet itself), requests one after
 *    the other, submit to finished: tracing off, and on with the real OTLP/HTTP exporter (batch
 *    processor) sending to a local receiver. Blocks alternate off / on with a fresh fleet each;
 * 2. the hooks alone, per stage: `inStageSpan` + `traceCarrier` (what a stage adds), off and on.
 *
 * Run: node --import tsx bench/telemetry.bench.ts [--requests N] [--blocks B]
 * Writes bench/results/telemetry.md.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { PyexecClient } from '../src/client/pyexec-client.js';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { startLocalRedis } from '../src/redis/redis-server.js';
import { startTelemetry } from '../src/telemetry/setup.js';
import { inStageSpan, traceCarrier } from '../src/telemetry/tracing.js';
import { Fleet } from '../src/workers/fleet.js';
import { PatternAnalyzer, RecordingExecutor, ScriptedGenerator, simplePolicy } from '../test/support/ops-fakes.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('--requests', 30);
const BLOCKS = arg('--blocks', 8);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (x: number, d = 2) => x.toFixed(d);

const redisServer = await startLocalRedis({ appendOnly: false });
/** An OTLP/HTTP sink on loopback that counts spans without parsing (it shares this process's CPU). */
const otlp = await (async () => {
  const sink = { spans: { length: 0 }, url: '', close: async () => {} };
  const server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      sink.spans.length += text.split('"spanId"').length - 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sink.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return sink;
})();
const root = mkdtempSync(path.join(os.tmpdir(), 'pyexec-bench-otel-'));
const request = { user_query: 'q', task_objective: 'ok', execution_folder_name: 'bench' };

async function block(traced: boolean, index: number): Promise<number[]> {
  const config = parseConfig(
    {
      execution: { code_generator: 'mock', execution_method: 'local' },
      approval: { global_mode: 'disabled' },
      pyexec: {
        redis: { prefix: `bench-otel-${index}` },
        execution_root: root,
        metrics_port: null,
        ...(traced ? { telemetry: { otlp_endpoint: otlp.url } } : {}),
      },
    },
    {},
  );
  const redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  const fleet = await Fleet.start({
    config,
    redisUrl: redisServer.url,
    logger: silentLogger(),
    metricsPort: null,
    generator: new ScriptedGenerator(),
    analyzer: new PatternAnalyzer(),
    decidePolicy: simplePolicy,
    executors: { local: new RecordingExecutor(redis, config.pyexec.redis.prefix) },
  });
  const client = await PyexecClient.connect({ redisUrl: redisServer.url, config });
  const ms: number[] = [];
  try {
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      const { requestId } = await client.submit(request);
      const res = await client.wait(requestId, { timeoutMs: 30_000 });
      if (res.kind !== 'finished' || res.response.status !== 'succeeded')
        throw new Error(`request ${requestId} failed`);
      ms.push(performance.now() - t0);
    }
  } finally {
    await client.close();
    await fleet.close();
    await redis.flushall();
    redis.disconnect();
  }
  return ms;
}

const pipeline = { off: [] as number[], on: [] as number[] };
const spansBefore = otlp.spans.length;
await block(false, -1); // warm-up (module loading, the analyzer, Redis scripts)
for (let b = 0; b < BLOCKS; b++) {
  const order = b % 2 === 0 ? [false, true] : [true, false];
  for (const traced of order) pipeline[traced ? 'on' : 'off'].push(...(await block(traced, b * 2 + Number(traced))));
}
const exported = otlp.spans.length - spansBefore;

/** ns per stage's hooks (a span, its context active, the hand-off's inject); `bare`: the same loop without them. */
async function hooks(bare = false): Promise<number> {
  const data = { requestId: 'r', threadId: 't', attempt: 1, enqueuedAt: Date.now() };
  const once = bare
    ? async () => (async () => undefined)()
    : async () => inStageSpan('analysis', 'j', data, async () => traceCarrier());
  const loops = 5000;
  for (let i = 0; i < 500; i++) await once();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < loops; i++) await once();
  return Number(process.hrtime.bigint() - t0) / loops;
}
const hookBare = await hooks(true);
const hookOff = await hooks();
// A queue that holds every span of the loop: none dropped (dropping is cheaper than exporting).
process.env['OTEL_BSP_MAX_QUEUE_SIZE'] = '50000';
const sdk = await startTelemetry({ otlp_endpoint: otlp.url, sample_ratio: 1 });
delete process.env['OTEL_BSP_MAX_QUEUE_SIZE'];
const hookOn = await hooks();
await sdk.shutdown();
const hookOff2 = await hooks();
const hookSpans = otlp.spans.length - spansBefore - exported;
const hookBare2 = await hooks(true);

await otlp.close();
await redisServer.stop();
rmSync(root, { recursive: true, force: true });

const bare = Math.min(hookBare, hookBare2);
const p50Off = pct(pipeline.off, 50);
const p50On = pct(pipeline.on, 50);
const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const row = (name: string, xs: number[]) =>
  `| ${name} | ${xs.length} | ${fmt(pct(xs, 50))} | ${fmt(pct(xs, 90))} | ${fmt(pct(xs, 99))} | ${fmt(meanOf(xs))} |`;
const md = `<!-- headline: | tracing (bench/telemetry.bench.ts) | a request through the whole pipeline ${fmt(p50On / p50Off, 3)}x with tracing on (OTLP/HTTP export) vs off (p50 ${fmt(p50On)} vs ${fmt(p50Off)} ms, fake plug-ins); the hooks of one stage ${fmt((hookOn - bare) / 1000)} µs on, ${fmt((Math.min(hookOff, hookOff2) - bare) / 1000)} µs off | -->
# Tracing benchmark

Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; ${new Date().toISOString().slice(0, 10)}; load average at the end ${os.loadavg()[0]!.toFixed(1)} (the machine is shared: figures are noisy, compare only within the run).
\`node --import tsx bench/telemetry.bench.ts --requests ${N} --blocks ${BLOCKS}\`

## A request through the pipeline, submit to finished (ms)

One process, real Redis, fake generator, analyzer and executor (so the fleet's own work is what is
timed); requests one after another; ${BLOCKS} blocks each way, interleaved, a fresh fleet per block.
Tracing on: every stage's span, the W3C context in each job, and the batch OTLP/HTTP exporter
sending to a sink on loopback in the same process (${exported} spans received).

| tracing | n | p50 | p90 | p99 | mean |
| --- | ---: | ---: | ---: | ---: | ---: |
${row('off', pipeline.off)}
${row('on (OTLP/HTTP)', pipeline.on)}

Ratio on/off: p50 ${fmt(p50On / p50Off, 3)}x, mean ${fmt(meanOf(pipeline.on) / meanOf(pipeline.off), 3)}x.

## The hooks of one stage (ns per stage, over a bare loop of the same awaits)

A span made active around the stage's work and the hand-off's inject; 5,000 in a row (with the
warm-up, ${hookSpans} spans exported).

| tracing | ns | over the bare loop |
| --- | ---: | ---: |
| bare loop (no hooks) | ${fmt(bare, 0)} | |
| off (the API's no-ops; before the SDK was registered) | ${fmt(hookOff, 0)} | ${fmt(hookOff - bare, 0)} |
| on (SDK, sampled, batch OTLP/HTTP exporter) | ${fmt(hookOn, 0)} | ${fmt(hookOn - bare, 0)} |
| off again (after the SDK was unregistered) | ${fmt(hookOff2, 0)} | ${fmt(hookOff2 - bare, 0)} |
`;
writeFileSync(path.join(import.meta.dirname, 'results/telemetry.md'), md);
process.stdout.write(md);
