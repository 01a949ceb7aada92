/**
 * Live output end to end on a real Redis: a program that prints in a loop and makes a figure
 * half-way, run in a Jupyter kernel (container method), seen by the TypeScript client (stream and
 * callbacks), by `pyexec submit --wait` (a separate process) and by the producer API's server-sent
 * events, each with the chunks in order and the figure between them, before the end; a flood of
 * millions of lines staying bounded in Redis; the budget shared by a request's attempts; BullMQ
 * job progress; a wait given up through its AbortSignal. (The Python client's streaming runs in
 * python-client.redis.test.ts.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { type ProducerApi, startProducerApi } from '../../src/api/producer-server.js';
import { createToken } from '../../src/approval/tokens.js';
import type { PyexecEvent } from '../../src/client/events.js';
import { PyexecHttpClient } from '../../src/client/http-client.js';
import { createExecutors, type ExecutorSet } from '../../src/executors/index.js';
import { silentLogger } from '../../src/logger.js';
import { projectRoot } from '../../src/python-env.js';
import { keyPrefix } from '../../src/redis/connection.js';
import { RequestStore } from '../../src/store/request-store.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';
import { iocModes, type SoftIocWithReadOnly, startIocWithReadOnlyPort } from '../support/kernel-support.js';
import { ScriptedGenerator } from '../support/scripted-generator.js';

const producer = createToken('agent', 'producer');
let ioc: SoftIocWithReadOnly;
let bed: TestBed | undefined;
let set: ExecutorSet | undefined;
let api: ProducerApi | undefined;

before(async () => {
  ioc = await startIocWithReadOnlyPort();
});
after(async () => {
  await ioc?.stop();
  await stopRedis();
});
afterEach(async () => {
  await api?.close();
  await bed?.close();
  await set?.close();
  api = undefined;
  bed = undefined;
  set = undefined;
});

/** The lines the `prints` program writes, and where its figure comes. */
const LINES = Array.from({ length: 20 }, (_, i) => `line ${i}`);

/** Checks one follower's view of a `prints` run: every line in order, the figure after line 9 and before line 10, all before the end. */
function assertPrintsRun(events: readonly PyexecEvent[], who: string): void {
  const last = events.at(-1);
  assert.equal(last?.type, 'finished', `${who}: the stream ends with finished`);
  assert.equal(last?.type === 'finished' && last.status, 'succeeded', who);
  const stdout = events.flatMap((e) => (e.type === 'stdout' ? [e.text] : [])).join('');
  assert.deepEqual(
    stdout.split('\n').filter((l) => l.startsWith('line ')),
    LINES,
    `${who}: every line, in order`,
  );
  const figure = events.findIndex((e) => e.type === 'display' && typeof e.data['image/png'] === 'string');
  assert.ok(figure > 0, `${who}: the figure is displayed as it is made`);
  const before = events
    .slice(0, figure)
    .flatMap((e) => (e.type === 'stdout' ? [e.text] : []))
    .join('');
  assert.match(before, /line 9\n/, `${who}: the figure comes after line 9`);
  assert.doesNotMatch(before, /line 10/, `${who}: and before line 10`);
  const png = Buffer.from((events[figure] as { data: Record<string, string> }).data['image/png']!, 'base64');
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
}

async function kernelFleet() {
  bed = await testBed({
    execution: {
      execution_method: 'container',
      modes: iocModes(ioc),
      // Read-only programs only: one Jupyter server (starting kernels is most of this file's time).
      container: { pool: { spares_per_mode: 1, lease_wait_ms: 120_000, spawn: { modes: ['read_only'] } } },
    },
    pyexec: { approver: { tokens: [producer.entry] } },
  });
  set = await createExecutors(bed.config, {
    redisUrl: bed.redisUrl,
    prefix: keyPrefix(bed.config.pyexec.redis.prefix),
    logger: silentLogger(),
  });
  await bed.startFleet({ executors: set.executors, generator: new ScriptedGenerator() });
  api = await startProducerApi({ config: bed.config, redisUrl: bed.redisUrl, port: 0 });
  return bed;
}

/** `pyexec submit --wait` as a separate process, with when each piece of its stdout arrived. */
function cliSubmit(b: TestBed, request: unknown, json = false) {
  const file = path.join(b.config.pyexec.execution_root, 'config.yml');
  writeFileSync(file, JSON.stringify({ ...b.config, pyexec: { ...b.config.pyexec, metrics_port: 0 } }));
  const args = [
    path.join(projectRoot, 'bin/pyexec.js'),
    '--config',
    file,
    '--redis',
    b.redisUrl,
    'submit',
    '-',
    '--wait',
  ];
  const child = spawn('node', json ? [...args, '--json'] : args, {
    env: { ...process.env, PYEXEC_LOG_LEVEL: 'warn' },
  });
  child.stdin.end(JSON.stringify(request));
  const chunks: { at: number; text: string }[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => chunks.push({ at: Date.now(), text: d.toString() }));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise<{ code: number | null; chunks: typeof chunks; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, chunks, stdout: chunks.map((c) => c.text).join(''), stderr })),
  );
}

describe('live output', () => {
  it('reaches the TypeScript client, the CLI and server-sent events in order, with the figure as it is made', {
    timeout: 300_000,
  }, async () => {
    const b = await kernelFleet();
    // One request followed live, at once, by the TypeScript client (stream() and wait()'s
    // callbacks, over Redis) and by server-sent events (the producer API, whose token submitted it).
    const http = new PyexecHttpClient({ url: api!.url, token: producer.token });
    const { requestId } = await http.submit(sampleRequest({ execution_folder_name: 'prints' }));
    const streamed: PyexecEvent[] = [];
    const sse: PyexecEvent[] = [];
    const calls: string[] = [];
    const [, , waited] = await Promise.all([
      (async () => {
        for await (const ev of b.client.stream(requestId)) streamed.push(ev);
      })(),
      (async () => {
        for await (const ev of http.stream(requestId)) sse.push(ev);
      })(),
      b.client.wait(requestId, {
        timeoutMs: 180_000,
        onStdout: (t) => calls.push(`out:${t}`),
        onDisplay: (d) => calls.push(`display:${Object.keys(d).sort().join(',')}`),
        onResult: (r) => calls.push(`result:${r.status}`),
      }),
    ]);
    assertPrintsRun(streamed, 'stream()');
    assertPrintsRun(sse, 'SSE');
    assert.equal(waited.kind, 'finished');
    const response = waited.kind === 'finished' ? waited.response : undefined;
    assert.equal(calls.at(-1), 'result:succeeded', 'onResult comes last');
    const viaCallbacks = calls.flatMap((c) => (c.startsWith('out:') ? [c.slice(4)] : [])).join('');
    assert.equal(viaCallbacks, response?.execution_stdout, 'the chunks add up to the response stdout');
    assert.ok(calls.some((c) => c.startsWith('display:') && c.includes('image/png')));

    // The CLI prints the lines as they come: the first line arrives well before the outcome. With
    // --json (run beside it): nothing live, one document.
    const [cli, json] = await Promise.all([
      cliSubmit(b, sampleRequest({ execution_folder_name: 'prints' })),
      cliSubmit(b, sampleRequest({ execution_folder_name: 'prints' }), true),
    ]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(
      cli.stdout.split('\n').filter((l) => l.startsWith('line ')),
      LINES,
    );
    const first = cli.chunks.find((c) => c.text.includes('line 0'));
    const outcome = cli.chunks.find((c) => c.text.includes('succeeded'));
    assert.ok(first && outcome && first.at < outcome.at, 'line 0 is printed before the outcome');
    assert.ok(outcome.at - first.at >= 300, 'while the code still runs (it prints for another second)');
    assert.match(cli.stderr, /\[pyexec\] figure \(image\/png, \d+ KiB\)/);
    assert.match(cli.stderr, /\[pyexec\] executing/);
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout);
    assert.equal(doc.status, 'succeeded');
    assert.deepEqual(doc.execution_result.results, { lines: 20 });
    assert.equal(json.stderr.includes('[pyexec]'), false);
  });

  it('keeps a flood of millions of lines bounded in Redis, with a marker and the count of what was dropped', {
    timeout: 300_000,
  }, async () => {
    bed = await testBed({ pyexec: { live_output: { max_bytes: 200_000, max_events: 100 } } });
    await bed.startFleet({ generator: new ScriptedGenerator() });
    const { requestId } = await bed.client.submit(sampleRequest({ execution_folder_name: 'flood' }));
    const events: PyexecEvent[] = [];
    for await (const ev of bed.client.stream(requestId)) events.push(ev);
    const redis = new Redis(bed.redisUrl);
    try {
      const store = new RequestStore(redis, keyPrefix(bed.config.pyexec.redis.prefix));
      const key = store.eventsKey(requestId);
      const length = await redis.xlen(key);
      const memory = Number(await redis.call('MEMORY', 'USAGE', key));
      assert.ok(length <= 100 + 20, `the stream holds ${length} entries`);
      assert.ok(memory < 600_000, `the stream takes ${memory} bytes`);
    } finally {
      redis.disconnect();
    }
    const sent = events
      .flatMap((e) => (e.type === 'stdout' ? [Buffer.byteLength(e.text)] : []))
      .reduce((a, b) => a + b, 0);
    assert.ok(sent > 0 && sent <= 200_000, `${sent} bytes of live output`);
    const markers = events.filter((e) => e.type === 'output_dropped');
    assert.deepEqual(
      markers.map((m) => m.type === 'output_dropped' && m.final),
      [false, true],
      'one marker when the bound is reached, one count after the run',
    );
    const final = markers[1];
    assert.ok(final?.type === 'output_dropped' && (final.dropped_bytes ?? 0) > 500_000);
    // The lines that were sent are the first ones, in order.
    const text = events.flatMap((e) => (e.type === 'stdout' ? [e.text] : [])).join('');
    const lines = text.split('\n').filter(Boolean);
    assert.deepEqual(
      lines.slice(0, 1000),
      Array.from({ length: 1000 }, (_, i) => String(i)),
    );
    const done = await bed.client.wait(requestId);
    assert.equal(done.kind === 'finished' && done.response.status, 'succeeded');
    assert.match(done.kind === 'finished' ? done.response.execution_stdout : '', /output truncated/);
    assert.equal(events.at(-1)?.type, 'finished');
  });

  it('charges one budget to every attempt of a request, and adds nothing once it ended', async () => {
    bed = await testBed();
    const redis = new Redis(bed.redisUrl);
    try {
      const store = new RequestStore(redis, keyPrefix(bed.config.pyexec.redis.prefix));
      const { requestId } = await bed.client.submit(sampleRequest());
      const limits = { maxBytes: 100, maxEvents: 3 };
      const chunk = (text: string) => ({
        type: 'stdout' as const,
        bytes: Buffer.byteLength(text),
        data: JSON.stringify({ text }),
      });
      assert.deepEqual(await store.appendOutput(requestId, [chunk('a'.repeat(60))], limits), {
        sent: 1,
        dropped: 0,
        ended: false,
      });
      // A second attempt (another worker) shares what is left: 40 bytes.
      assert.deepEqual(await store.appendOutput(requestId, [chunk('b'.repeat(30)), chunk('c'.repeat(30))], limits), {
        sent: 1,
        dropped: 30,
        ended: false,
      });
      assert.deepEqual(await store.appendOutput(requestId, [chunk('d'.repeat(5))], limits), {
        sent: 1,
        dropped: 0,
        ended: false,
      });
      assert.deepEqual(
        await store.appendOutput(requestId, [chunk('e')], limits),
        { sent: 0, dropped: 1, ended: false },
        'max events',
      );
      const types = (await store.eventsAfter(requestId, '0')).map((e) => e.type);
      assert.deepEqual(types, ['submitted', 'stdout', 'stdout', 'output_dropped', 'stdout'], 'one marker only');
      assert.equal(await store.end(requestId, 'cancelled', {}, 60), 'recorded');
      assert.deepEqual(await store.appendOutput(requestId, [chunk('f')], { maxBytes: 1e6, maxEvents: 1e3 }), {
        sent: 0,
        dropped: 0,
        ended: true,
      });
    } finally {
      redis.disconnect();
    }
  });

  it('updates the execution job’s progress, and a wait given up by its signal leaves the request running', async () => {
    bed = await testBed();
    const fleet = await bed.startFleet({ generator: new ScriptedGenerator() });
    const { requestId } = await bed.client.submit(sampleRequest({ execution_folder_name: 'slow' }));
    const abort = new AbortController();
    const seen: string[] = [];
    const waiting = bed.client.wait(requestId, {
      signal: abort.signal,
      onStdout: (t) => {
        seen.push(t);
        if (seen.length === 3) abort.abort(new Error('the producer stopped waiting'));
      },
    });
    await assert.rejects(waiting, /the producer stopped waiting/);
    const job = await fleet.queues.execution.getJob(`${requestId}-execution-1`);
    const progress = job?.progress as { stage?: string; stdout_bytes?: number };
    assert.equal(progress.stage, 'execution');
    assert.ok((progress.stdout_bytes ?? 0) > 0);
    assert.equal((await bed.client.status(requestId))?.status, 'executing', 'the request goes on');
    await bed.client.cancel(requestId);
    const end = await bed.client.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(end.kind === 'finished' && end.response.status, 'cancelled');
  });
});
