import type { Metrics } from '../metrics.js';
import { QueueName, type Stage } from '../queues/envelope.js';
import type { QueueSet } from '../queues/queue-set.js';
import type { RedisConnection as Redis } from '../redis/connection.js';

/**
 * Queue-wide gauges, read at scrape time. Every read is O(1) or O(log n) in the queue's length, so
 * a scrape stays cheap with thousands of queued jobs: counts come from `getJobCounts` (LLEN/ZCARD
 * per state), the oldest waiting job from the tail of the wait list (one LINDEX and one HGET), and
 * overdue approvals from one ZCOUNT on the delayed set. No job is ever listed.
 */
export async function refreshQueueMetrics(
  redis: Redis,
  queues: QueueSet,
  stages: readonly Stage[],
  metrics: Metrics,
): Promise<void> {
  const now = Date.now();
  for (const stage of stages) {
    const queue = queues[stage];
    const name = QueueName[stage];
    const c = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
    const n = (state: string) => c[state] ?? 0;
    // A held job is a delayed job in the approval-hold queue whose delay is its deadline.
    const delayedState = stage === 'approval' ? 'held' : 'delayed';
    metrics.queueJobs.set({ queue: name, state: 'waiting' }, n('waiting') + n('prioritized'));
    metrics.queueJobs.set({ queue: name, state: 'active' }, n('active'));
    metrics.queueJobs.set({ queue: name, state: delayedState }, n('delayed'));
    metrics.queueJobs.set({ queue: name, state: 'failed' }, n('failed'));
    metrics.queueOldestWaiting.set({ queue: name }, await oldestWaitingSeconds(redis, queue, now));
    if (stage === 'approval') {
      // BullMQ scores a delayed job by (due time in ms) * 0x1000 + a counter.
      const overdue = await redis.zcount(queue.keys['delayed']!, 0, Math.max(0, now - 1000) * 0x1000);
      metrics.approvalOverdue.set(overdue);
    }
  }
}

/** Age of the job at the head of the wait list (BullMQ LPUSHes, so the oldest is the last). */
async function oldestWaitingSeconds(redis: Redis, queue: QueueSet[Stage], now: number): Promise<number> {
  const id = await redis.lindex(queue.keys['wait']!, -1);
  if (!id) return 0;
  const ts = await redis.hget(queue.toKey(id), 'timestamp');
  return ts ? Math.max(0, (now - Number(ts)) / 1000) : 0;
}

/**
 * BullMQ's own `bullmq_job_count{queue,state}` (and its completed/failed counters) for the given
 * queues, from `Queue.exportPrometheusMetrics`, merged into one exposition: each queue's text
 * repeats the HELP/TYPE lines, which Prometheus rejects when a family appears twice.
 */
export async function bullmqExposition(queues: QueueSet, stages: readonly Stage[]): Promise<string> {
  const families = new Map<string, { head: string[]; samples: string[] }>();
  for (const stage of stages) {
    const text = await queues[stage].exportPrometheusMetrics();
    for (const line of text.split('\n')) {
      const m = /^# (?:HELP|TYPE) (\S+)/.exec(line) ?? /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
      if (!m) continue;
      const fam = families.get(m[1]!) ?? { head: [], samples: [] };
      families.set(m[1]!, fam);
      if (line.startsWith('#')) {
        if (fam.head.length < 2) fam.head.push(line);
      } else fam.samples.push(line);
    }
  }
  return [...families.values()].map((f) => [...f.head, ...f.samples].join('\n')).join('\n') + '\n';
}
