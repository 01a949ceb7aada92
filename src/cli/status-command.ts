import type { Config } from '../config.js';
import { QueueName, STAGES } from '../queues/envelope.js';
import { createQueueSet } from '../queues/queue-set.js';
import { createRedis, keyPrefix, waitReady } from '../redis/connection.js';
import { RequestStore } from '../store/request-store.js';

/**
 * `pyexec status [id]`: per-stage queue depths, active workers and the oldest waiting job, or one
 * request's record. Exits non-zero when Redis is unreachable.
 */
export async function statusCommand(
  requestId: string | undefined,
  opts: { json: boolean; config: Config; redisUrl: string; out?: NodeJS.WritableStream },
): Promise<number> {
  const out = opts.out ?? process.stdout;
  const redis = createRedis(opts.redisUrl, 'producer');
  try {
    await waitReady(redis);
  } catch (err) {
    process.stderr.write(`pyexec: Redis unreachable at ${opts.redisUrl}: ${(err as Error).message}\n`);
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
          ? `${JSON.stringify(snap, null, 2)}\n`
          : `${snap.requestId}  ${snap.status}  thread ${snap.threadId}\n`,
      );
      return 0;
    }
    const rows = [];
    for (const stage of STAGES) {
      const q = queues[stage];
      const counts = await q.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized');
      const workers = await q.getWorkersCount();
      const oldest = (await q.getJobs(['waiting', 'prioritized'], 0, 0, true))[0];
      const finished = (counts['completed'] ?? 0) + (counts['failed'] ?? 0);
      rows.push({
        stage,
        queue: QueueName[stage],
        waiting: (counts['waiting'] ?? 0) + (counts['prioritized'] ?? 0),
        active: counts['active'] ?? 0,
        delayed: counts['delayed'] ?? 0,
        failed: counts['failed'] ?? 0,
        completed: counts['completed'] ?? 0,
        workers,
        oldest_waiting_seconds: oldest ? Math.round((Date.now() - oldest.timestamp) / 1000) : null,
        failure_rate: finished ? (counts['failed'] ?? 0) / finished : 0,
      });
    }
    if (opts.json) out.write(`${JSON.stringify({ stages: rows }, null, 2)}\n`);
    else {
      out.write('stage        waiting  active  delayed  failed  workers  oldest-wait\n');
      for (const r of rows) {
        out.write(
          `${r.stage.padEnd(12)} ${String(r.waiting).padStart(7)} ${String(r.active).padStart(7)} ${String(r.delayed).padStart(8)} ${String(r.failed).padStart(7)} ${String(r.workers).padStart(8)}  ${r.oldest_waiting_seconds ?? '-'}\n`,
        );
      }
    }
    return 0;
  } catch (err) {
    process.stderr.write(`pyexec: Redis unreachable at ${opts.redisUrl}: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await queues.close();
    redis.disconnect();
  }
}
