import { createHash } from 'node:crypto';
import { type Job, type Processor, type Queue, UnrecoverableError } from 'bullmq';
import type { z } from 'zod';
import type { Config } from '../config.js';
import { coerceError, errorKind, ServiceError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { Envelope, ErrorEntry, Outcome, Stage } from '../queues/envelope.js';
import { jobId, parseJob } from '../queues/job-id.js';
import type { RequestStatus, RequestStore } from '../store/request-store.js';
import { inStageSpan, traceCarrier, traceIds } from '../telemetry/tracing.js';

/**
 * Named points where a test can stop a process (`FleetOptions.faults`, wired only by test entry
 * points such as test/support/worker-entry.ts): each sits where a crash would cut a step in two.
 *   `result:ended`     the result stage recorded the end, its job is not yet complete
 *   `reaper:decided`   the reaper decided what to do with a failed job, and has not done it
 *   `handoff:<stage>`  a stage added the next stage's job, its own job is not yet complete
 */
export type FaultPoint = 'result:ended' | 'reaper:decided' | `handoff:${Stage}`;

/** The part of the request store the stages use (RequestStore; an in-memory fake in unit tests). */
export type StageStore = Pick<
  RequestStore,
  'beginStage' | 'isCancelRequested' | 'setStatus' | 'setHold' | 'end' | 'event' | 'appendOutput' | 'outputSummary'
>;

/** Where stages add the next stage's job (the QueueSet; a recording fake in unit tests). */
export type StageQueues = Readonly<Record<Stage, Pick<Queue, 'add'>>>;

/** What every stage processor closes over. */
export interface StageDeps {
  readonly config: Config;
  readonly queues: StageQueues;
  readonly store: StageStore;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Test hook called at each FaultPoint (test/support's process entry exits there). */
  readonly fault?: (point: FaultPoint) => void;
}

export const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** Status shown to the producer while a stage works. */
const WORKING: Record<Stage, RequestStatus> = {
  generation: 'generating',
  analysis: 'analyzing',
  approval: 'awaiting_approval',
  execution: 'executing',
  result: 'finishing',
};

/**
 * Adds the next stage's job with its deterministic id. A worker that crashes after this and runs
 * the job again adds nothing twice: BullMQ ignores an add whose id exists.
 */
export async function handoff(
  deps: StageDeps,
  stage: Stage,
  env: Envelope,
  extra: Record<string, unknown> = {},
  opts: { delay?: number; jobIdSuffix?: string } = {},
): Promise<string> {
  const id = jobId(env.requestId, stage, env.attempt) + (opts.jobIdSuffix ?? '');
  // The active stage span's trace context, when tracing (else the job keeps the one it came with).
  const data = { ...env, ...extra, ...traceCarrier(), enqueuedAt: Date.now() };
  await deps.queues[stage].add(stage, data, { jobId: id, ...(opts.delay ? { delay: opts.delay } : {}) });
  deps.fault?.(`handoff:${stage}`);
  return id;
}

/** Where a request is when a stage (or the reaper) ends it: the envelope, the stage, when it started. */
export interface EndFrom {
  readonly env: Envelope;
  readonly stage: Stage;
  /** When the stage began work on the job; its timing is recorded. Unset: no timing (the reaper). */
  readonly startedAt?: number;
}

export interface EndOptions {
  /** The stage's outcome label (timings, metrics, the processor's return value). @defaultValue the status */
  readonly label?: string;
  /** The error that ends the request, appended to the error chain. */
  readonly error?: Omit<ErrorEntry, 'attempt' | 'at' | 'issues' | 'stage'> & { issues?: string[] };
}

/**
 * The one road to a terminal state, for every stage and the reaper: appends the error and the
 * stage's timing, and hands the request to the result stage with its outcome. The result job's id
 * is deterministic (`<requestId>-result-<attempt>`), so the first decision for an attempt stands
 * and a repeat adds nothing; the result stage alone records the end (RequestStore.end, atomic).
 * Returns the outcome label.
 */
export async function endRequest(
  deps: StageDeps,
  from: EndFrom,
  outcome: Outcome,
  options: EndOptions = {},
): Promise<string> {
  const label = options.label ?? outcome.status;
  let env = from.env;
  if (options.error) env = withError(env, { stage: from.stage, ...options.error });
  if (from.startedAt !== undefined) env = withTiming(env, from.stage, from.startedAt, label);
  await handoff(deps, 'result', env, { outcome });
  return label;
}

/** Appends an error to the chain (a new envelope; the old one is not changed). */
export function withError(
  env: Envelope,
  entry: Omit<ErrorEntry, 'attempt' | 'at' | 'issues'> & { issues?: string[] },
): Envelope {
  const full: ErrorEntry = { issues: [], ...entry, attempt: env.attempt, at: Date.now() };
  return { ...env, errorChain: [...env.errorChain, full] };
}

export function withTiming(env: Envelope, stage: Stage, startedAt: number, outcome: string): Envelope {
  return {
    ...env,
    timings: [
      ...env.timings,
      { stage, attempt: env.attempt, enqueuedAt: env.enqueuedAt, startedAt, finishedAt: Date.now(), outcome },
    ],
  };
}

/**
 * A code error found by `stage`: back to generation for another attempt while the stage's budget
 * allows (error-aware regeneration), otherwise the request fails with the whole error chain.
 */
export async function regenerateOrFail(
  deps: StageDeps,
  env: Envelope,
  budget: 'generation' | 'execution',
  stage: Stage,
): Promise<'regenerated' | 'failed'> {
  const { max_generation_retries, max_execution_retries } = deps.config.python_executor;
  const next =
    budget === 'generation'
      ? { ...env, generationFailures: env.generationFailures + 1 }
      : { ...env, executionFailures: env.executionFailures + 1 };
  const exhausted =
    budget === 'generation'
      ? next.generationFailures > max_generation_retries
      : next.executionFailures > max_execution_retries;
  deps.metrics.retries.inc({ stage, error_class: 'code' });
  if (exhausted) {
    const last = env.errorChain.at(-1);
    const limit = budget === 'generation' ? max_generation_retries : max_execution_retries;
    await endRequest(
      deps,
      { env: next, stage },
      {
        status: 'failed',
        reason: `${budget} retries exhausted (max_${budget}_retries: ${limit}); last error: ${last?.message ?? 'unknown'}`,
        detail: `${budget}_retries_exhausted`,
      },
    );
    return 'failed';
  }
  await handoff(deps, 'generation', { ...next, attempt: env.attempt + 1 });
  return 'regenerated';
}

export interface StageRun {
  readonly stage: Stage;
  readonly env: Envelope;
  readonly job: Job;
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly startedAt: number;
}

/**
 * The frame around every stage processor: parse the envelope, honour cancellation, time the
 * stage, and map errors by kind. Infrastructure errors are re-thrown while BullMQ attempts remain
 * (retry with backoff, same stage, same code); on the last attempt, and for any other unexpected
 * error, the request ends as `failed` with the error in the chain, so nothing is lost.
 */
async function runStage<T extends Envelope>(
  deps: StageDeps,
  stage: Stage,
  parse: (data: unknown) => T,
  job: Job,
  signal: AbortSignal | undefined,
  body: (run: StageRun & { env: T }) => Promise<string>,
): Promise<string> {
  const startedAt = Date.now();
  const env = parse(job.data);
  const log = deps.logger.child({
    jobId: job.id,
    requestId: env.requestId,
    threadId: env.threadId,
    stage,
    attempt: env.attempt,
    ...traceIds(),
  });
  deps.metrics.queueWait.observe({ stage }, Math.max(0, startedAt - env.enqueuedAt) / 1000);
  // One info line per stage transition: request, thread, stage, outcome and duration.
  const end = (outcome: string) => {
    const durationMs = Date.now() - startedAt;
    deps.metrics.stageDuration.observe({ stage, outcome }, durationMs / 1000);
    log.info({ outcome, durationMs }, `${stage} ${outcome}`);
    return outcome;
  };
  // One round trip: a request that has ended (another road got there first) gets no more work;
  // one the producer cancelled ends here (the result stage records what is already decided);
  // otherwise the stage's working status is set.
  const start = await deps.store.beginStage(
    env.requestId,
    WORKING[stage],
    { stage, attempt: env.attempt },
    stage !== 'result',
  );
  if (start === 'ended') {
    log.info('request already ended; job skipped');
    return end('already_ended');
  }
  if (start === 'cancel') {
    return end(
      await endRequest(deps, { env, stage, startedAt }, { status: 'cancelled', reason: 'cancelled by the producer' }),
    );
  }
  try {
    return end(await body({ stage, env, job, signal: signal ?? new AbortController().signal, log, startedAt }));
  } catch (raw) {
    const err = coerceError(raw);
    if (err instanceof UnrecoverableError) throw err;
    const kind = errorKind(err);
    const attempts = job.opts.attempts ?? 1;
    if (
      kind === 'infrastructure' &&
      job.attemptsMade + 1 < attempts &&
      !(err instanceof ServiceError && !err.retryable)
    ) {
      deps.metrics.retries.inc({ stage, error_class: 'infrastructure' });
      log.warn(
        { err: err.message, attemptsMade: job.attemptsMade + 1, attempts },
        'infrastructure error; retrying the stage',
      );
      end('retry');
      throw err;
    }
    log.error({ err: err.message, kind }, 'stage failed; ending the request');
    return end(
      await endRequest(
        deps,
        { env, stage, startedAt },
        {
          status: 'failed',
          reason:
            kind === 'infrastructure'
              ? `${stage}: infrastructure unavailable after ${attempts} attempts: ${err.message}`
              : `${stage}: ${err.message}`,
          detail: kind,
        },
        { error: { errorType: err instanceof ServiceError ? err.code : 'unexpected', kind, message: err.message } },
      ),
    );
  }
}

/**
 * A stage's BullMQ processor: the job's data is parsed with the stage's schema (a job that cannot
 * parse fails for good), and `body` runs inside `runStage`'s frame.
 */
export function stageProcessor<S extends z.ZodType<Envelope>>(
  deps: StageDeps,
  stage: Stage,
  schema: S,
  body: (run: StageRun & { env: z.output<S> }) => Promise<string>,
): Processor {
  return (job: Job, _token?: string, signal?: AbortSignal) =>
    inStageSpan(stage, job.id, job.data, () =>
      runStage(deps, stage, (d) => parseJob(schema, d) as z.output<S>, job, signal, body),
    );
}
