import { Job } from 'bullmq';
import type { z } from 'zod';
import type { Logger } from '../logger.js';
import { AnalysisJob } from '../queues/analysis.js';
import { ApprovalJob } from '../queues/approval.js';
import { Envelope, STAGES, type Stage } from '../queues/envelope.js';
import { ExecutionJob } from '../queues/execution.js';
import { GenerationJob } from '../queues/generation.js';
import { jobId, requestIdOfJob, requeueCount, requeuedJobId } from '../queues/job-id.js';
import type { QueueSet } from '../queues/queue-set.js';
import { ResultJob } from '../queues/result.js';
import type { RedisConnection as Redis } from '../redis/connection.js';
import { PythonExecutionRequest } from '../request.js';
import { executionFolderFor } from '../store/execution-folder.js';
import type { RequestStore } from '../store/request-store.js';
import { placed } from './generation-worker.js';
import { recordEnd } from './result-worker.js';
import { endRequest, type StageDeps } from './stage-runtime.js';

/**
 * The reaper: settles every job that ended in BullMQ's failed set while its request is still open.
 * A job gets there when it cannot hand off: its worker died (a stalled job; an execution fails at
 * its first stall, other stages at their second), its data does not parse, or the end of the
 * request could not be written on its last attempt (Redis went away).
 *
 * Nobody has to be listening when that happens. Each process sweeps the failed sets of all five
 * queues at start-up (before its workers take jobs) and every `pyexec.sweep_interval_ms`, and
 * settles at once the jobs its own workers fail. Sweeps read a window of each failed set by score
 * (the time BullMQ failed the job), from a cursor that moves only after a pass settled every job
 * in it:
 *
 *   <prefix>:sweep:<stage>   STR  time (ms) up to which every failed job of the stage was settled
 *
 * There is no claim. Every action has a deterministic id, so doing it twice (two processes, or
 * one that died half-way and a later sweep) does it once, and its result is the mark that the job
 * is settled: a job is left alone when its request has ended, or when any job it could have handed
 * off to exists (it moved on before its worker died), including its own requeue.
 *
 *   data does not parse             → the request fails (`invalid_job`)
 *   execution of write-capable code → the request fails as `needs_review`: it may have written to
 *                                     EPICS, and is never run again automatically
 *   requeued fewer than max_requeues → run again as a new job `<id>-r<n>` (fresh attempts)
 *   otherwise                        → the request fails (`infrastructure`), saying how often the
 *                                     stage stopped; a result job records the end itself
 */
/** The reaper reads jobs and records beyond what a stage needs: the real queue set and store. */
export type ReaperDeps = StageDeps & { readonly queues: QueueSet; readonly store: RequestStore };

export interface ReaperOptions {
  readonly deps: ReaperDeps;
  readonly redis: Redis;
  readonly prefix: string;
  readonly logger: Logger;
}

/** What settling one failed job did. */
export type Settlement =
  | 'not_failed'
  | 'ended'
  | 'moved_on'
  | 'requeued'
  | 'needs_review'
  | 'request_failed'
  | 'recorded'
  | 'orphan';

const SCHEMAS: Record<Stage, z.ZodType> = {
  generation: GenerationJob,
  analysis: AnalysisJob,
  approval: ApprovalJob,
  execution: ExecutionJob,
  result: ResultJob,
};

/** The stages a job of `stage` hands off to; `+1`: the next attempt (regeneration). */
const HANDOFFS: Record<Stage, readonly [Stage, 0 | 1][]> = {
  generation: [
    ['analysis', 0],
    ['generation', 1],
    ['result', 0],
  ],
  analysis: [
    ['execution', 0],
    ['approval', 0],
    ['generation', 1],
    ['result', 0],
  ],
  approval: [
    ['execution', 0],
    ['result', 0],
  ],
  execution: [
    ['result', 0],
    ['generation', 1],
  ],
  result: [],
};

/** How far back a sweep looks before its cursor: clock skew between hosts, and a slow pass. */
const MARGIN_MS = 10 * 60_000;

export class Reaper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly options: ReaperOptions) {}

  private get deps(): ReaperDeps {
    return this.options.deps;
  }

  /** Sweeps every `pyexec.sweep_interval_ms` until stop(). */
  start(): void {
    const every = this.deps.config.pyexec.sweep_interval_ms;
    const tick = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.sweep()
          .catch((err) => this.options.logger.warn({ err: (err as Error).message }, 'sweep failed'))
          .finally(tick);
      }, every);
      this.timer.unref?.();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.sweeping?.catch(() => {});
  }

  /** One pass over the failed sets of all stages (one pass at a time per process). */
  sweep(): Promise<void> {
    this.sweeping ??= (async () => {
      try {
        for (const stage of STAGES) await this.sweepStage(stage);
      } finally {
        this.sweeping = undefined;
      }
    })();
    return this.sweeping;
  }

  private async sweepStage(stage: Stage): Promise<void> {
    const { redis, prefix } = this.options;
    const cursorKey = `${prefix}:sweep:${stage}`;
    const cursor = Number((await redis.get(cursorKey)) ?? 0);
    const passStart = Date.now();
    const failedKey = this.deps.queues[stage].toKey('failed');
    const ids = await redis.zrangebyscore(failedKey, Math.max(0, cursor - MARGIN_MS), '+inf');
    let settledAll = true;
    for (const id of ids) {
      if (this.stopped) return;
      try {
        await this.settle(stage, id);
      } catch (err) {
        settledAll = false;
        this.options.logger.warn({ err: (err as Error).message, stage, jobId: id }, 'could not settle a failed job');
      }
    }
    // Only forward, and only over a pass that settled everything it read.
    if (settledAll && passStart > cursor) await redis.set(cursorKey, String(passStart));
  }

  /** Settles one job of `stage` if it is failed and its request still open (idempotent). */
  async settle(stage: Stage, id: string): Promise<Settlement> {
    const { store } = this.deps;
    // The request id is in the job id: an ended request costs one command, not the job's data.
    const known = requestIdOfJob(id);
    if (known && (await store.hasEnded(known))) return 'ended';
    const job = await Job.fromId(this.deps.queues[stage], id);
    if (!job || (await job.getState()) !== 'failed') return 'not_failed';
    const requestId = known ?? (job.data as { requestId?: unknown } | undefined)?.requestId;
    if (typeof requestId !== 'string') {
      this.options.logger.error({ stage, jobId: id }, 'failed job names no request; left alone');
      return 'orphan';
    }
    const snap = await store.get(requestId);
    if (!snap || snap.response !== undefined) return 'ended';
    if (await this.movedOn(stage, id, requestId, job.data)) return 'moved_on';
    const log = this.options.logger.child({ requestId, jobId: id, stage });
    const metrics = this.deps.metrics;
    const stageData = SCHEMAS[stage].safeParse(job.data);
    const reason = job.failedReason || 'job failed';
    if (!stageData.success) {
      const env = await this.envelopeOf(job, requestId);
      if (!env) return 'orphan';
      this.deps.fault?.('reaper:decided');
      metrics.stalledJobs.inc({ stage, action: 'failed' });
      log.error({ failedReason: reason }, 'job data does not parse; ending the request');
      return this.endOrRecord(stage, env, 'request_failed', log, {
        status: 'failed',
        reason: `${stage} job cannot be processed: ${reason}`,
        detail: 'invalid_job',
      });
    }
    // A generation job may come without its execution method and folder (its producer did not
    // know the fleet's config): placed as the generation stage would have placed it.
    const env =
      stage === 'generation' ? placed(stageData.data as GenerationJob, this.deps.config) : (stageData.data as Envelope);
    const mode = (env as { analysis?: { mode?: string } }).analysis?.mode;
    const times = requeueCount(id) + 1;
    if (stage === 'execution' && mode === 'write_access') {
      this.deps.fault?.('reaper:decided');
      metrics.stalledJobs.inc({ stage, action: 'needs_review' });
      log.error({ failedReason: reason }, 'execution of write-capable code stopped; needs review');
      await endRequest(
        this.deps,
        { env, stage },
        {
          status: 'failed',
          reason:
            'the execution worker stopped while running code that may write to EPICS; it may have written and is not re-run automatically',
          detail: 'needs_review',
        },
        { error: { errorType: 'stalled', kind: 'infrastructure', message: reason } },
      );
      return 'needs_review';
    }
    if (requeueCount(id) < this.deps.config.pyexec.max_requeues) {
      const next = requeuedJobId(id);
      this.deps.fault?.('reaper:decided');
      metrics.stalledJobs.inc({ stage, action: 'requeued' });
      metrics.retries.inc({ stage, error_class: 'stalled' });
      log.warn({ failedReason: reason, next }, `${stage} job stopped with its worker; run again`);
      await this.deps.queues[stage].add(stage, { ...job.data, enqueuedAt: Date.now() }, { jobId: next });
      return 'requeued';
    }
    this.deps.fault?.('reaper:decided');
    metrics.stalledJobs.inc({ stage, action: 'failed' });
    log.error({ failedReason: reason }, `${stage} job stopped ${times} times; ending the request`);
    const what = stage === 'execution' ? `the ${mode ?? 'read_only'} execution` : `the ${stage} stage`;
    return this.endOrRecord(stage, env, 'request_failed', log, {
      status: 'failed',
      reason: `${what} stopped ${times} times before it finished (its worker died or lost its lock; last: ${reason}); not run again`,
      detail: 'infrastructure',
    });
  }

  /**
   * Ends the request by the one road (a result job), or, for a result job itself, records the
   * end directly with the result stage's own step (without the files).
   */
  private async endOrRecord(
    stage: Stage,
    env: Envelope,
    done: Settlement,
    log: Logger,
    outcome: { status: 'failed'; reason: string; detail: string },
  ): Promise<Settlement> {
    const error = { errorType: 'stalled', kind: 'infrastructure' as const, message: outcome.reason };
    if (stage !== 'result') {
      await endRequest(this.deps, { env, stage }, outcome, { error });
      return done;
    }
    const failed = endRequestEnvelope(env, stage, outcome, error);
    await recordEnd(this.deps, failed, log, { files: false });
    return 'recorded';
  }

  /** Whether the job handed off before it failed (or was requeued already): the request went on. */
  private async movedOn(stage: Stage, id: string, requestId: string, data: unknown): Promise<boolean> {
    const attempt = (data as { attempt?: unknown })?.attempt;
    const keys = [this.deps.queues[stage].toKey(requeuedJobId(id))];
    if (typeof attempt === 'number') {
      for (const [next, plus] of HANDOFFS[stage]) {
        keys.push(this.deps.queues[next].toKey(jobId(requestId, next, attempt + plus)));
      }
    }
    return (await this.options.redis.exists(...keys)) > 0;
  }

  /** The job's envelope, or one rebuilt from the request's record when the job's data is unusable. */
  private async envelopeOf(job: Job, requestId: string): Promise<Envelope | null> {
    const parsed = Envelope.safeParse(job.data);
    if (parsed.success) return parsed.data;
    const snap = await this.deps.store.get(requestId);
    const request = PythonExecutionRequest.safeParse(await this.deps.store.requestOf(requestId));
    if (!snap || !request.success) {
      this.options.logger.error({ requestId, jobId: job.id }, 'failed job and request record unusable; left alone');
      return null;
    }
    const attempt = (job.data as { attempt?: unknown })?.attempt;
    const config = this.deps.config;
    return Envelope.parse({
      requestId,
      threadId: snap.threadId,
      request: request.data,
      submittedAt: snap.submittedAt,
      attempt: typeof attempt === 'number' && Number.isInteger(attempt) && attempt > 0 ? attempt : 1,
      executionMethod: request.data.execution_method ?? config.execution.execution_method,
      executionFolder: executionFolderFor(
        config.pyexec.execution_root,
        request.data.execution_folder_name,
        requestId,
        new Date(snap.submittedAt),
      ),
    });
  }
}

/** The result job's data that endRequest would hand off, for the reaper's direct record. */
function endRequestEnvelope(
  env: Envelope,
  stage: Stage,
  outcome: { status: 'failed'; reason: string; detail: string },
  error: { errorType: string; kind: 'infrastructure'; message: string },
): ResultJob {
  const entry = { ...error, stage, issues: [], attempt: env.attempt, at: Date.now() };
  return { ...env, errorChain: [...env.errorChain, entry], outcome };
}
