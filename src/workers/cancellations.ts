import type { Worker } from 'bullmq';
import { ExecutorUnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Stage } from '../queues/envelope.js';
import type { RedisConnection as Redis } from '../redis/connection.js';

/**
 * The jobs this process is running, and the two ways one is stopped from outside its processor:
 * a producer's cancel (published on `<prefix>:cancel`, heard by every process, acted on by the one
 * running the request), and the interrupt on shutdown or exit (every running job is aborted, so
 * that it ends or is re-queued before the process goes). Both reach the job through the
 * AbortSignal BullMQ hands its processor.
 */
export class RunningJobs {
  private readonly jobs = new Map<string, { stage: Stage; requestId: string }>();
  private readonly workers = new Map<Stage, Worker>();

  /** Follows a stage's worker: its jobs are tracked from `active` to `completed` or `failed`. */
  track(stage: Stage, worker: Worker): void {
    this.workers.set(stage, worker);
    worker.on('active', (job) => this.jobs.set(String(job.id), { stage, requestId: String(job.data?.requestId) }));
    worker.on('completed', (job) => this.jobs.delete(String(job.id)));
    worker.on('failed', (job) => job && this.jobs.delete(String(job.id)));
  }

  get size(): number {
    return this.jobs.size;
  }

  /** Jobs running in `stage`'s worker now. */
  busy(stage: Stage): number {
    let n = 0;
    for (const j of this.jobs.values()) if (j.stage === stage) n++;
    return n;
  }

  /** Aborts the request's running job, if this process runs it. */
  cancel(requestId: string, reason: string): boolean {
    let found = false;
    for (const [jobId, j] of this.jobs) {
      if (j.requestId !== requestId) continue;
      found = this.workers.get(j.stage)?.cancelJob(jobId, reason) || found;
    }
    return found;
  }

  /**
   * Aborts every running job. An execution gets an ExecutorUnavailableError that says the code may
   * have started: write-capable code then ends as `needs_review` and is never re-run; read-only
   * code is retried by BullMQ on another worker. Other stages are retried.
   */
  interrupt(reason: string, metrics: Metrics): void {
    for (const [stage, worker] of this.workers) {
      const n = this.busy(stage);
      if (n === 0) continue;
      metrics.interruptedJobs.inc({ stage }, n);
      const error = stage === 'execution' ? new ExecutorUnavailableError(reason, { started: true }) : new Error(reason);
      // BullMQ passes the reason to AbortController.abort as is; executors throw `signal.reason`.
      worker.cancelAllJobs(error as unknown as string);
    }
  }
}

/**
 * Subscribes to the fleet's cancel channel on a connection of its own; each request id heard
 * aborts that request's job here, if it runs here. Returns the unsubscribe step.
 */
export async function watchCancellations(
  redis: Redis,
  prefix: string,
  running: RunningJobs,
  logger: Logger,
  /** Called with every request id heard (e.g. to withdraw a held job). */
  onCancel?: (requestId: string) => void,
): Promise<() => Promise<void>> {
  const sub = redis.duplicate();
  sub.on('error', () => {});
  await sub.subscribe(`${prefix}:cancel`);
  sub.on('message', (_channel, requestId: string) => {
    if (running.cancel(requestId, 'cancelled by the producer')) logger.info({ requestId }, 'running job cancelled');
    onCancel?.(requestId);
  });
  return async () => sub.disconnect();
}
