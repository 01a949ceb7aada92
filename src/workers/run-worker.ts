import { Job, QueueEvents, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Analyzer } from '../analysis/analyzer.js';
import { ApprovalService } from '../approval/approval-service.js';
import type { Config } from '../config.js';
import type { Executor } from '../executors/executor.js';
import { LocalExecutor } from '../executors/local-executor.js';
import type { CodeGenerator } from '../generators/code-generator.js';
import { createCodeGenerator } from '../generators/factory.js';
import { type OpsServerOptions, type ProcessState, startOpsServer } from '../http/ops-server.js';
import type { Logger } from '../logger.js';
import { Metrics } from '../metrics.js';
import { Envelope, QueueName, STAGES, type Stage } from '../queues/envelope.js';
import { createQueueSet, type QueueSet } from '../queues/queue-set.js';
import { createRedis, keyPrefix } from '../redis/connection.js';
import { RequestStore, TERMINAL } from '../store/request-store.js';
import { createAnalysisProcessor, type DecidePolicy } from './analysis-worker.js';
import { createApprovalProcessor } from './approval-worker.js';
import { createExecutionProcessor } from './execution-worker.js';
import { createGenerationProcessor } from './generation-worker.js';
import { createResultProcessor } from './result-worker.js';
import { finishRequest, type StageDeps } from './stage-runtime.js';

export interface FleetOptions {
  readonly config: Config;
  readonly redisUrl: string;
  /** The stages this process works on. @defaultValue every stage */
  readonly stages?: readonly Stage[];
  readonly logger: Logger;
  /** Port of /metrics, /healthz, /readyz; null: no server. @defaultValue config.pyexec.metrics_port */
  readonly metricsPort?: number | null;
  /** Plug-in overrides (tests, embedding); otherwise built from the config. */
  readonly generator?: CodeGenerator;
  readonly analyzer?: Analyzer;
  readonly decidePolicy?: DecidePolicy;
  readonly executors?: Partial<Record<'local' | 'container', Executor>>;
  readonly metrics?: Metrics;
}

/**
 * The composition root: one process running the workers of some stages. It alone reads config,
 * constructs SDK clients, Redis connections and executors, and owns their lifecycle.
 */
export class Fleet {
  state: ProcessState = 'starting';
  readonly workers = new Map<Stage, Worker>();
  metricsPort: number | null = null;
  private readonly cleanups: Array<() => Promise<unknown>> = [];
  private closing: Promise<void> | undefined;
  private readonly running = new Map<string, { stage: Stage; jobId: string }>();

  private constructor(
    readonly options: FleetOptions,
    readonly redis: Redis,
    readonly queues: QueueSet,
    readonly store: RequestStore,
    readonly approvals: ApprovalService,
    readonly metrics: Metrics,
  ) {}

  static async start(options: FleetOptions): Promise<Fleet> {
    const { config } = options;
    const prefix = keyPrefix(config.pyexec.redis.prefix);
    const redis = createRedis(options.redisUrl, 'worker');
    const metrics = options.metrics ?? new Metrics();
    const queues = createQueueSet(redis, prefix, config);
    const store = new RequestStore(redis, prefix);
    const approvals = new ApprovalService(redis, prefix, queues.approval, {
      retentionSeconds: config.pyexec.retention.finished_seconds,
      metrics,
    });
    const fleet = new Fleet(options, redis, queues, store, approvals, metrics);
    try {
      await fleet.boot(prefix);
    } catch (err) {
      await fleet.close();
      throw err;
    }
    return fleet;
  }

  private async boot(prefix: string): Promise<void> {
    const { config, logger } = this.options;
    const stages = this.options.stages ?? STAGES;
    await this.redis.ping();
    await this.checkEvictionPolicy();
    const deps: StageDeps = { config, queues: this.queues, store: this.store, logger, metrics: this.metrics };
    this.cleanups.push(() => this.queues.close());
    for (const stage of stages) {
      const processor = await this.processorFor(stage, deps);
      const worker = new Worker(QueueName[stage], processor, {
        connection: this.redis,
        prefix,
        concurrency: config.pyexec.concurrency[stage],
        lockDuration: config.pyexec.lock_duration_ms,
        stalledInterval: config.pyexec.stalled_interval_ms,
        // BullMQ delivers at least once. Code that may write to EPICS must never run twice because
        // a worker died: a stalled execution fails (and is reviewed) instead of running again.
        maxStalledCount: stage === 'execution' ? 0 : 1,
        autorun: true,
      });
      worker.on('error', (err) => logger.error({ err: err.message, stage }, 'worker error'));
      worker.on('active', (job) => this.running.set(String(job.data?.requestId), { stage, jobId: String(job.id) }));
      worker.on('completed', (job) => this.running.delete(String(job.data?.requestId)));
      worker.on('failed', (job) => job && this.running.delete(String(job.data?.requestId)));
      this.workers.set(stage, worker);
      this.cleanups.push(() => worker.close(true));
      await this.watchFailures(stage, prefix, deps);
    }
    await this.watchCancellations(prefix);
    if ((this.options.metricsPort ?? config.pyexec.metrics_port) !== null) await this.serveOps();
    this.state = 'running';
    logger.info({ stages, metricsPort: this.metricsPort }, 'fleet process running');
  }

  private async processorFor(stage: Stage, deps: StageDeps) {
    const { config } = this.options;
    switch (stage) {
      case 'generation':
        return createGenerationProcessor({
          ...deps,
          generator: this.options.generator ?? (await createCodeGenerator(config, { logger: this.options.logger })),
        });
      case 'analysis': {
        const { analyzer, decidePolicy } = await this.analysis();
        return createAnalysisProcessor({ ...deps, analyzer, decidePolicy });
      }
      case 'approval':
        return createApprovalProcessor({ ...deps, approvals: this.approvals });
      case 'execution': {
        const executors = this.options.executors ?? this.defaultExecutors();
        for (const ex of Object.values(executors)) this.cleanups.push(async () => ex?.close?.());
        const { analyzer, decidePolicy } = await this.analysis();
        const recheck = async (code: string) => decidePolicy(await analyzer.analyze(code), config);
        return createExecutionProcessor({ ...deps, executors, recheck });
      }
      case 'result':
        return createResultProcessor(deps);
    }
  }

  private analysisParts: Promise<{ analyzer: Analyzer; decidePolicy: DecidePolicy }> | undefined;

  /** One analyzer per process, shared by the analysis stage and the execution stage's re-check. */
  private analysis(): Promise<{ analyzer: Analyzer; decidePolicy: DecidePolicy }> {
    this.analysisParts ??= (async () => {
      // Loaded on demand: a process that runs neither stage never starts the analyzer's helper.
      const mod = this.options.analyzer && this.options.decidePolicy ? undefined : await import('../analysis/index.js');
      const analyzer = this.options.analyzer ?? mod!.createAnalyzer(this.options.config);
      this.cleanups.push(async () => analyzer.close?.());
      return { analyzer, decidePolicy: this.options.decidePolicy ?? mod!.decidePolicy };
    })();
    return this.analysisParts;
  }

  private defaultExecutors(): Partial<Record<'local' | 'container', Executor>> {
    const { config } = this.options;
    const modeEnv = {
      read_only: config.execution.modes.read_only.environment,
      write_access: config.execution.modes.write_access.environment,
    };
    return {
      local: new LocalExecutor({
        python: config.execution.local.python_env_path ?? config.pyexec.python,
        modeEnv,
        maxOutputBytes: config.pyexec.max_output_bytes,
      }),
    };
  }

  /** Refuses to run on a Redis that may evict keys: BullMQ's locks and our records would vanish. */
  private async checkEvictionPolicy(): Promise<void> {
    try {
      const res = (await this.redis.config('GET', 'maxmemory-policy')) as string[];
      const policy = res[1];
      if (policy && policy !== 'noeviction') {
        throw new Error(`Redis maxmemory-policy is '${policy}'; pyexec requires 'noeviction'`);
      }
    } catch (err) {
      if ((err as Error).message.includes('noeviction')) throw err;
      // CONFIG may be disabled on managed Redis; BullMQ itself warns there.
    }
  }

  /**
   * A job that ends in BullMQ's failed state never reached a hand-off: it stalled (its worker
   * died), or its data could not parse. End the request so nothing is lost, except read-only
   * executions, which are safe to run again and are re-queued (twice at most).
   */
  private async watchFailures(stage: Stage, prefix: string, deps: StageDeps): Promise<void> {
    const connection = this.redis.duplicate();
    connection.on('error', () => {});
    const events = new QueueEvents(QueueName[stage], { connection, prefix });
    events.on('error', () => {});
    this.cleanups.push(async () => {
      await events.close();
      connection.disconnect();
    });
    events.on('failed', ({ jobId }) => {
      this.reap(stage, jobId, deps).catch((err) =>
        this.options.logger.error({ err: (err as Error).message, jobId }, 'reaper failed'),
      );
    });
    await events.waitUntilReady();
  }

  private async reap(stage: Stage, jobId: string, deps: StageDeps): Promise<void> {
    const job = await Job.fromId(this.queues[stage], jobId);
    if (!job || (await job.getState()) !== 'failed') return;
    const parsed = Envelope.safeParse(job.data);
    const requestId = parsed.success ? parsed.data.requestId : (job.data as { requestId?: unknown })?.requestId;
    if (typeof requestId !== 'string') return;
    const snap = await this.store.get(requestId);
    if (!snap || TERMINAL.includes(snap.status)) return;
    const log = this.options.logger.child({ requestId, jobId, stage });
    if (!parsed.success || stage === 'result') {
      await this.store.finish(
        requestId,
        'failed',
        { request_id: requestId, status: 'failed', reason: `${stage} job failed: ${job.failedReason}` },
        this.options.config.pyexec.retention.finished_seconds,
      );
      return;
    }
    const env = parsed.data;
    const mode = (job.data as { analysis?: { mode?: string } }).analysis?.mode;
    if (stage === 'execution' && mode === 'read_only' && (jobId.match(/-requeue/g)?.length ?? 0) < 2) {
      log.warn('read-only execution stalled; re-queued');
      await deps.queues.execution.add(
        'execution',
        { ...job.data, enqueuedAt: Date.now() },
        { jobId: `${jobId}-requeue` },
      );
      return;
    }
    const needsReview = stage === 'execution';
    log.error(
      { failedReason: job.failedReason },
      needsReview ? 'execution stalled; needs review' : 'job failed; ending request',
    );
    await finishRequest(
      deps,
      {
        ...env,
        errorChain: [
          ...env.errorChain,
          {
            stage,
            errorType: 'stalled',
            kind: 'infrastructure',
            message: job.failedReason ?? 'job failed',
            issues: [],
            attempt: env.attempt,
            at: Date.now(),
          },
        ],
      },
      {
        status: 'failed',
        reason: needsReview
          ? 'the execution worker stopped while running code that may write to EPICS; not re-run automatically'
          : `${stage} job failed: ${job.failedReason}`,
        detail: needsReview ? 'needs_review' : 'infrastructure',
      },
    );
  }

  /** A producer's cancel reaches a running job of this process through its AbortSignal. */
  private async watchCancellations(prefix: string): Promise<void> {
    const sub = this.redis.duplicate();
    sub.on('error', () => {});
    this.cleanups.push(async () => sub.disconnect());
    await sub.subscribe(`${prefix}:cancel`);
    sub.on('message', (_channel, requestId: string) => {
      const run = this.running.get(requestId);
      if (run) this.workers.get(run.stage)?.cancelJob(run.jobId, 'cancelled by the producer');
    });
  }

  private async serveOps(): Promise<void> {
    const opts: OpsServerOptions = {
      metrics: this.metrics,
      port: this.options.metricsPort ?? this.options.config.pyexec.metrics_port,
      state: () => this.state,
      ready: async () => ({ redis: (await this.redis.ping().catch(() => 'down')) === 'PONG' }),
      beforeScrape: () => this.refreshQueueGauges(),
    };
    const server = await startOpsServer(opts);
    this.metricsPort = server.port;
    this.cleanups.unshift(() => server.close());
  }

  async refreshQueueGauges(): Promise<void> {
    for (const stage of STAGES) {
      const counts = await this.queues[stage].getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
      for (const [state, n] of Object.entries(counts))
        this.metrics.queueJobs.set({ queue: QueueName[stage], state }, n);
    }
  }

  /** Stops taking jobs and lets running ones finish within `graceMs`, then closes everything. */
  async close(graceMs = 0): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'draining';
      const logger = this.options.logger;
      if (graceMs > 0) {
        const drained = Promise.allSettled([...this.workers.values()].map((w) => w.close()));
        const timedOut = await Promise.race([
          drained.then(() => false),
          new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref()),
        ]);
        if (timedOut) logger.warn({ graceMs }, 'grace period over; closing by force');
      }
      for (const step of [...this.cleanups].reverse()) {
        try {
          await step();
        } catch (err) {
          logger.error({ err: (err as Error).message }, 'close step failed');
        }
      }
      this.redis.disconnect();
      this.state = 'stopped';
    })();
    return this.closing;
  }
}
