import { type JobsOptions, Queue } from 'bullmq';
import type { RedisConnection as Redis } from '../redis/connection.js';
import { QueueName, STAGES, type Stage } from './envelope.js';

/** The settings job options come from (a fleet's Config has them; the client package passes its own). */
export interface JobSettings {
  readonly pyexec: {
    readonly retention: { readonly finished_seconds: number };
    readonly infra_attempts: number;
    readonly infra_backoff_ms: number;
  };
}

export type QueueSet = Record<Stage, Queue> & { close(): Promise<void> };

/** Default job options per stage: infrastructure retries with jittered exponential backoff. */
export function jobOptions(config: JobSettings, stage: Stage): JobsOptions {
  const age = config.pyexec.retention.finished_seconds;
  const attempts = stage === 'result' ? Math.max(5, config.pyexec.infra_attempts) : config.pyexec.infra_attempts;
  return {
    attempts,
    backoff: { type: 'exponential', delay: config.pyexec.infra_backoff_ms, jitter: 0.5 },
    removeOnComplete: { age },
    removeOnFail: { age },
  };
}

/** One BullMQ Queue per stage, sharing one connection (producers and workers add next-stage jobs). */
export function createQueueSet(connection: Redis, prefix: string, config: JobSettings): QueueSet {
  const queues = {} as Record<Stage, Queue>;
  for (const stage of STAGES) {
    queues[stage] = new Queue(QueueName[stage], { connection, prefix, defaultJobOptions: jobOptions(config, stage) });
    queues[stage].on('error', () => {});
  }
  let closing: Promise<void> | undefined;
  return Object.assign(queues, {
    close(): Promise<void> {
      closing ??= Promise.allSettled(STAGES.map((s) => queues[s].close())).then(() => undefined);
      return closing;
    },
  });
}
