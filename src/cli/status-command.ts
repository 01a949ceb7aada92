import type { Config } from '../config.js';
import { LeaseStore } from '../executors/kernel-leases.js';
import { FAILURE_OUTCOMES, presentWorkers, recentOutcomes } from '../ops/fleet-presence.js';
import { QueueName, STAGES } from '../queues/envelope.js';
import { createQueueSet } from '../queues/queue-set.js';
import type { RedisConnection as Redis } from '../redis/connection.js';
import { createRedis, keyPrefix, redactUrl, scanKeys, waitReady } from '../redis/connection.js';
import { RequestStore } from '../store/request-store.js';

/** The window of `failure_rate_15m`. */
const FAILURE_WINDOW_MINUTES = 15;

/**
 * `pyexec status [id]`: per stage, the queue depth (waiting, active, delayed or held, failed), the
 * worker processes that take jobs and their capacity (job slots), the oldest waiting job, and the
 * failure rate of the last 15 minutes (failed and needs-review outcomes over finished jobs, from
 * every worker); or one request's record. Reads O(1) per queue: no job is listed. Exits non-zero
 * when Redis is unreachable.
 */
export async function statusCommand(
  requestId: string | undefined,
  opts: { json: boolean; config: Config; redisUrl: string; out?: NodeJS.WritableStream },
): Promise<number> {
  const out = opts.out ?? process.stdout;
  const redis = createRedis(opts.redisUrl, 'producer', {}, opts.config.pyexec.redis.cluster);
  try {
    await waitReady(redis);
  } catch (err) {
    process.stderr.write(`pyexec: Redis unreachable at ${redactUrl(opts.redisUrl)}: ${(err as Error).message}\n`);
    redis.disconnect();
    return 1;
  }
  const prefix = keyPrefix(opts.config.pyexec.redis.prefix);
  const queues = createQueueSet(redis, prefix, opts.config);
  try {
    if (requestId) {
      const snap = await new RequestStore(redis, prefix).get(requestId);
      if (!snap) {
        process.stderr.write(`pyexec: no request ${requestId}\n`);
        return 1;
      }
      out.write(
        opts.json
          ? `${JSON.stringify((await import('../client/wire.js')).requestView(snap), null, 2)}\n`
          : `${snap.requestId}  ${snap.status}  thread ${snap.threadId}\n`,
      );
      return 0;
    }
    const rows = [];
    /** How the live execution workers' kernels are confined. */
    const confinement = new Set<string>();
    for (const stage of STAGES) {
      const q = queues[stage];
      const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized');
      const oldest = (await q.getJobs(['waiting', 'prioritized'], 0, 0, true))[0];
      const workers = await presentWorkers(redis, prefix, stage);
      if (stage === 'execution') for (const w of workers) if (w.confinement) confinement.add(w.confinement);
      const outcomes = await recentOutcomes(redis, prefix, stage, FAILURE_WINDOW_MINUTES);
      const finished = Object.entries(outcomes)
        .filter(([o]) => o !== 'retry')
        .reduce((n, [, v]) => n + v, 0);
      const failures = FAILURE_OUTCOMES.reduce((n, o) => n + (outcomes[o] ?? 0), 0);
      rows.push({
        stage,
        queue: QueueName[stage],
        waiting: (counts['waiting'] ?? 0) + (counts['prioritized'] ?? 0),
        active: counts['active'] ?? 0,
        // In the approval hold, delayed jobs are held for a person until their deadline.
        [stage === 'approval' ? 'held' : 'delayed']: counts['delayed'] ?? 0,
        failed: counts['failed'] ?? 0,
        completed: counts['completed'] ?? 0,
        workers: workers.filter((w) => w.state === 'running').length,
        draining_workers: workers.filter((w) => w.state === 'draining').length,
        capacity: workers.filter((w) => w.state === 'running').reduce((n, w) => n + w.slots, 0),
        oldest_waiting_seconds: oldest ? Math.round((Date.now() - oldest.timestamp) / 1000) : null,
        finished_last_15m: finished,
        failure_rate_15m: finished ? failures / finished : 0,
      });
    }
    const pools = await kernelPools(redis, prefix);
    if (opts.json)
      out.write(
        `${JSON.stringify({ stages: rows, kernel_pools: pools, confinement: [...confinement].sort() }, null, 2)}\n`,
      );
    else {
      out.write('stage        waiting  active  delayed/held  failed  workers  capacity  oldest-wait  fail-rate(15m)\n');
      for (const r of rows) {
        const delayed = 'held' in r ? r.held : r.delayed;
        out.write(
          `${r.stage.padEnd(12)} ${String(r.waiting).padStart(7)} ${String(r.active).padStart(7)} ${String(delayed).padStart(13)} ${String(r.failed).padStart(7)} ${String(r.workers).padStart(8)} ${String(r.capacity).padStart(9)}  ${(r.oldest_waiting_seconds === null ? '-' : `${r.oldest_waiting_seconds}s`).padStart(11)}  ${r.finished_last_15m ? `${(r.failure_rate_15m * 100).toFixed(1)}%` : '-'}\n`,
        );
      }
      for (const c of [...confinement].sort())
        out.write(`${c.startsWith('deployment') ? 'WARNING: ' : ''}kernel confinement: ${c}\n`);
      for (const p of pools) {
        const m = (x: PoolCounts) => `${x.idle} idle, ${x.leased} leased, ${x.recycling} recycling (${x.total})`;
        out.write(`kernel pool ${p.pool}: read_only ${m(p.read_only)}; write_access ${m(p.write_access)}\n`);
      }
    }
    return 0;
  } catch (err) {
    process.stderr.write(`pyexec: Redis unreachable at ${redactUrl(opts.redisUrl)}: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await queues.close();
    redis.disconnect();
  }
}

interface PoolCounts {
  idle: number;
  leased: number;
  recycling: number;
  total: number;
}

/** Kernel pool capacity per pool sharing this Redis: kernels by mode and state (SCAN; an operator command). */
async function kernelPools(
  redis: Redis,
  prefix: string,
): Promise<{ pool: string; read_only: PoolCounts; write_access: PoolCounts }[]> {
  const ids = new Set<string>();
  for (const k of await scanKeys(redis, `${prefix}:kpool:*:kernels`)) {
    ids.add(k.slice(`${prefix}:kpool:`.length, -':kernels'.length));
  }
  const pools = [];
  for (const pool of [...ids].sort()) {
    const empty = (): PoolCounts => ({ idle: 0, leased: 0, recycling: 0, total: 0 });
    const counts = { read_only: empty(), write_access: empty() };
    for (const r of await new LeaseStore(redis, prefix, pool).all()) {
      counts[r.mode][r.state] += 1;
      counts[r.mode].total += 1;
    }
    pools.push({ pool, ...counts });
  }
  return pools;
}
