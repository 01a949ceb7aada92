/**
 * The scale check of issue #7: N worker processes per stage (separate OS processes, the fakes of
 * ops-fakes.ts behind the plug-in interfaces) against one real redis-server, R requests through
 * every queue. Used by test/integration/ops-scale.redis.test.ts (small) and bench/scale.bench.ts.
 */
import { Redis } from 'ioredis';
import { PyexecClient } from '../../src/client/pyexec-client.js';
import { STAGES } from '../../src/queues/envelope.js';
import { keyPrefix } from '../../src/redis/connection.js';
import { startLocalRedis } from '../../src/redis/redis-server.js';
import { RequestStore } from '../../src/store/request-store.js';
import { testConfig } from './harness.js';
import { executionsKey, parseMetrics } from './ops-fakes.js';
import { type FleetProcess, spawnFleetProcess } from './ops-processes.js';

export interface ScaleOptions {
  readonly processesPerStage: number;
  readonly requests: number;
  /** Worker concurrency per process and stage. @defaultValue 4 */
  readonly concurrency?: number;
  readonly log?: (line: string) => void;
}

export interface ScaleReport {
  readonly processes: number;
  readonly requests: number;
  readonly startupMs: number;
  readonly submitMs: number;
  /** From the first submit to the last terminal state. */
  readonly drainMs: number;
  readonly requestsPerSecond: number;
  /** Terminal status → requests, from each request's record. */
  readonly statuses: Record<string, number>;
  /** Requests whose code ran 0 times, and more than once (from the executor's Redis counts). */
  readonly notExecuted: number;
  readonly executedTwice: number;
  /** Requests that never reached a terminal state. */
  readonly lost: number;
  /** Metric sums across every process's /metrics, and what they should be. */
  readonly metrics: Record<string, { summed: number; expected: number }>;
  /** Exit codes of the worker processes after SIGTERM. */
  readonly exitCodes: (number | string)[];
}

export async function runScale(options: ScaleOptions): Promise<ScaleReport> {
  const log = options.log ?? (() => {});
  const c = options.concurrency ?? 4;
  const server = await startLocalRedis();
  const config = testConfig({
    pyexec: {
      concurrency: { generation: c, analysis: c, approval: c, execution: c, result: c },
      lock_duration_ms: 30_000,
      stalled_interval_ms: 30_000,
    },
  });
  const processes: FleetProcess[] = [];
  const redis = new Redis(server.url);
  const client = await PyexecClient.connect({ redisUrl: server.url, config });
  try {
    let t0 = Date.now();
    for (const stage of STAGES) {
      for (let i = 0; i < options.processesPerStage; i++)
        processes.push(await spawnFleetProcess(config, server.url, [stage]));
    }
    const startupMs = Date.now() - t0;
    log(`${processes.length} worker processes running after ${startupMs} ms`);

    t0 = Date.now();
    const ids: string[] = [];
    const writes = Math.floor(options.requests / 4);
    for (let i = 0; i < options.requests; i += 50) {
      const batch = Array.from({ length: Math.min(50, options.requests - i) }, (_, j) =>
        client.submit({
          user_query: `q${i + j}`,
          task_objective: i + j < writes ? 'write' : 'ok',
          execution_folder_name: 'scale',
        }),
      );
      ids.push(...(await Promise.all(batch)).map((s) => s.requestId));
    }
    const submitMs = Date.now() - t0;
    log(`${ids.length} requests submitted in ${submitMs} ms`);

    const store = new RequestStore(redis, keyPrefix(config.pyexec.redis.prefix));
    const deadline = Date.now() + Math.max(120_000, options.requests * 300);
    let pending = ids;
    const statuses: Record<string, number> = {};
    while (pending.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      const still: string[] = [];
      for (const id of pending) {
        const snap = await store.get(id);
        if (snap && ['succeeded', 'failed', 'rejected', 'expired', 'cancelled'].includes(snap.status))
          statuses[snap.status] = (statuses[snap.status] ?? 0) + 1;
        else still.push(id);
      }
      pending = still;
    }
    const drainMs = Date.now() - t0;
    log(`${ids.length - pending.length} of ${ids.length} requests ended after ${drainMs} ms`);

    const runs = await redis.hgetall(executionsKey(config.pyexec.redis.prefix));
    const notExecuted = ids.filter((id) => !runs[id]).length;
    const executedTwice = ids.filter((id) => Number(runs[id] ?? 0) > 1).length;

    const scrapes = await Promise.all(
      processes.map(async (p) => parseMetrics(await (await fetch(p.url('/metrics'))).text())),
    );
    const sum = (name: string, labels: Record<string, string> = {}) =>
      scrapes.reduce((n, m) => n + m.value(name, labels), 0);
    const n = ids.length;
    const metrics: ScaleReport['metrics'] = {
      'pyexec_requests_terminal_total{status="succeeded"}': {
        summed: sum('pyexec_requests_terminal_total', { status: 'succeeded' }),
        expected: n,
      },
      pyexec_requests_terminal_total: { summed: sum('pyexec_requests_terminal_total'), expected: n },
      ...Object.fromEntries(
        STAGES.filter((s) => s !== 'approval').map((stage) => [
          `pyexec_stage_duration_seconds_count{stage="${stage}"}`,
          { summed: sum('pyexec_stage_duration_seconds_count', { stage }), expected: n },
        ]),
      ),
      'pyexec_generator_tokens_total{direction="input"}': {
        summed: sum('pyexec_generator_tokens_total', { direction: 'input' }),
        expected: n * 100,
      },
      'pyexec_analysis_findings_total{rule="epics-write"}': {
        summed: sum('pyexec_analysis_findings_total', { rule: 'epics-write' }),
        expected: writes,
      },
      pyexec_retries_total: { summed: sum('pyexec_retries_total'), expected: 0 },
    };

    t0 = Date.now();
    for (const p of processes) p.child.kill('SIGTERM');
    const exitCodes = await Promise.all(processes.map((p) => p.exited));
    log(`worker processes exited after SIGTERM in ${Date.now() - t0} ms: ${JSON.stringify(exitCodes)}`);
    return {
      processes: processes.length,
      requests: n,
      startupMs,
      submitMs,
      drainMs,
      requestsPerSecond: (n - pending.length) / (drainMs / 1000),
      statuses,
      notExecuted,
      executedTwice,
      lost: pending.length,
      metrics,
      exitCodes,
    };
  } finally {
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(processes.map((p) => p.exited));
    await client.close();
    redis.disconnect();
    await server.stop();
    config.cleanup();
  }
}
