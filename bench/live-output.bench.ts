/**
 * What live output costs (issue 16), side by side in one run, interleaved:
 *
 * 1. a run of the local method that prints 100,000 lines (about 590 KB, within the kept output),
 *    with live output to a real Redis (the runner's echo, LiveOutput's coalescing, the store's
 *    budget script) and without it (no callback): wall time per run;
 * 2. how late a printed line reaches a follower: a program prints a timestamped line every 50 ms;
 *    a blocking reader of the request's event stream notes when each line arrives (flush_ms 150).
 *
 * Run: node --import tsx bench/live-output.bench.ts [--iterations N]
 * Writes bench/results/live-output.md.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { LocalExecutor } from '../src/executors/local-executor.js';
import { silentLogger } from '../src/logger.js';
import { startLocalRedis } from '../src/redis/redis-server.js';
import { PythonExecutionRequest } from '../src/request.js';
import { RequestStore } from '../src/store/request-store.js';
import { LiveOutput } from '../src/workers/live-output.js';

const iterArg = process.argv.indexOf('--iterations');
const N = iterArg > 0 ? Number(process.argv[iterArg + 1]) : 10;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (x: number) => x.toFixed(1);
const row = (name: string, xs: number[]) =>
  `| ${name} | ${xs.length} | ${fmt(pct(xs, 50))} | ${fmt(pct(xs, 90))} | ${fmt(Math.min(...xs))} |`;

const FLOOD = 'for i in range(100_000):\n    print(i)\nresults = {"n": 100_000}\n';
const TICKS =
  'import time\nfor i in range(40):\n    print(f"{time.time()}", flush=True)\n    time.sleep(0.05)\nresults = {}\n';

const redisServer = await startLocalRedis({ appendOnly: false });
const redis = new Redis(redisServer.url);
const reader = new Redis(redisServer.url);
const store = new RequestStore(redis, `{bench-${randomUUID()}}`);
const root = mkdtempSync(path.join(os.tmpdir(), 'pyexec-bench-live-'));
const executor = new LocalExecutor({ confinement: 'landlock' });
const request = PythonExecutionRequest.parse({ user_query: 'q', task_objective: 'o', execution_folder_name: 'bench' });

/** The request's record (the live output's budget lives in it). */
const record = (requestId: string) =>
  store.submit({
    requestId,
    threadId: requestId,
    digest: requestId,
    requestJson: JSON.stringify(request),
    ttlSeconds: 600,
  });

async function runOnce(code: string, live: boolean): Promise<{ ms: number; requestId: string }> {
  const requestId = randomUUID();
  const folder = path.join(root, requestId);
  mkdirSync(path.join(folder, 'figures'), { recursive: true });
  writeFileSync(path.join(folder, 'code.py'), code);
  writeFileSync(path.join(folder, 'context.json'), '{}');
  await record(requestId);
  const out = live
    ? new LiveOutput({ store, requestId, flushMs: 150, maxBytes: 2_000_000, maxEvents: 500, logger: silentLogger() })
    : undefined;
  const t0 = performance.now();
  const outcome = await executor.execute(
    { requestId, code, mode: 'read_only', executionFolder: folder, timeoutMs: 120_000, request, onOutput: out?.push },
    new AbortController().signal,
  );
  await out?.close();
  const ms = performance.now() - t0;
  if (outcome.status !== 'ok') throw new Error(`run failed: ${JSON.stringify(outcome).slice(0, 500)}`);
  return { ms, requestId };
}

try {
  const withLive: number[] = [];
  const without: number[] = [];
  await runOnce(FLOOD, true); // warm-up (imports, page cache)
  for (let i = 0; i < N; i++) {
    for (const live of i % 2 ? [true, false] : [false, true])
      (live ? withLive : without).push((await runOnce(FLOOD, live)).ms);
  }
  // Latency: follow the stream while the program prints timestamps.
  const delays: number[] = [];
  for (let i = 0; i < Math.max(2, Math.floor(N / 3)); i++) {
    const requestId = randomUUID();
    const key = store.eventsKey(requestId);
    let last = '0';
    let done = false;
    const follow = (async () => {
      while (!done) {
        const res = (await reader.xread('BLOCK', 200, 'STREAMS', key, last)) as [string, [string, string[]][]][] | null;
        const now = Date.now() / 1000;
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            last = id;
            const f = Object.fromEntries(fields.flatMap((_, j) => (j % 2 ? [] : [[fields[j], fields[j + 1]]])));
            if (f['type'] !== 'stdout') continue;
            for (const line of (JSON.parse(f['data']!) as { text: string }).text.split('\n').filter(Boolean))
              delays.push((now - Number(line)) * 1000);
          }
        }
      }
    })();
    const requestIdRun = await (async () => {
      const folder = path.join(root, requestId);
      mkdirSync(path.join(folder, 'figures'), { recursive: true });
      writeFileSync(path.join(folder, 'code.py'), TICKS);
      writeFileSync(path.join(folder, 'context.json'), '{}');
      await record(requestId);
      const out = new LiveOutput({
        store,
        requestId,
        flushMs: 150,
        maxBytes: 2_000_000,
        maxEvents: 500,
        logger: silentLogger(),
      });
      await executor.execute(
        {
          requestId,
          code: TICKS,
          mode: 'read_only',
          executionFolder: folder,
          timeoutMs: 60_000,
          request,
          onOutput: out.push,
        },
        new AbortController().signal,
      );
      await out.close();
      return requestId;
    })();
    await new Promise((r) => setTimeout(r, 400));
    done = true;
    await follow;
    void requestIdRun;
  }
  const ratio = (pct(withLive, 50) / pct(without, 50)).toFixed(3);
  const md = `<!-- headline: | live output (bench/live-output.bench.ts) | a 100,000-line run ${ratio}x with live output to Redis vs without; a printed line reaches a follower in ${fmt(pct(delays, 50))} ms (median, flush_ms 150) | -->
# Live output

What live output costs: the local method's runner echoes what it keeps, LiveOutput gathers it for
\`flush_ms\` and sends it through the store's budget script. Measured side by side in one run,
interleaved, ${N} rounds, on a local redis-server (\`node --import tsx bench/live-output.bench.ts\`).

| run (ms) | n | median | p90 | min |
| --- | --- | --- | --- | --- |
${row('100,000 lines, live output on', withLive)}
${row('100,000 lines, live output off', without)}

**Ratio (median, on/off): ${ratio}x.**

| line printed → line at a follower (ms) | n | median | p90 | min |
| --- | --- | --- | --- | --- |
${row('a line every 50 ms, flush_ms 150', delays)}
`;
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/live-output.md', md);
  process.stdout.write(md);
} finally {
  redis.disconnect();
  reader.disconnect();
  await redisServer.stop();
  rmSync(root, { recursive: true, force: true });
}
