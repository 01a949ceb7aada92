import { Worker } from 'bullmq';
import type { Analyzer } from '../analysis/analyzer.js';
import type { DecidePolicy } from '../analysis/policy.js';
import { ApprovalService } from '../approval/approval-service.js';
import { runCloseSteps } from '../close-steps.js';
import type { Config } from '../config.js';
import type { Executor } from '../executors/executor.js';
import { type ConfinementStatus, createExecutors, describeConfinement } from '../executors/index.js';
import type { CodeGenerator } from '../generators/code-generator.js';
import { createCodeGenerator } from '../generators/factory.js';
import type { Logger } from '../logger.js';
import { Metrics } from '../metrics.js';
import type { ExecutionMethod } from '../modes.js';
import { FleetPresence, recordOutcome } from '../ops/fleet-presence.js';
import { type OpsServerOptions, type ProcessState, startOpsServer } from '../ops/ops-server.js';
import { bullmqExposition, refreshQueueMetrics } from '../ops/queue-metrics.js';
import { QueueName, STAGES, type Stage } from '../queues/envelope.js';
import { createQueueSet, type QueueSet } from '../queues/queue-set.js';
import type { RedisConnection as Redis } from '../redis/connection.js';
import { createRedis, keyPrefix } from '../redis/connection.js';
import { ExecutionFolderPruner } from '../store/execution-folder-pruner.js';
import { RequestStore } from '../store/request-store.js';
import { startTelemetry } from '../telemetry/setup.js';
import { createAnalysisProcessor } from './analysis-worker.js';
import { createApprovalProcessor } from './approval-worker.js';
import { RunningJobs, watchCancellations } from './cancellations.js';
import { createExecutionProcessor } from './execution-worker.js';
import { createGenerationProcessor } from './generation-worker.js';
import { Reaper, type ReaperDeps } from './reaper.js';
import { createResultProcessor } from './result-worker.js';
import type { FaultPoint, StageDeps } from './stage-runtime.js';

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
  readonly executors?: Partial<Record<ExecutionMethod, Executor>>;
  readonly metrics?: Metrics;
  /**
   * Export the queue-wide gauges (pyexec_queue_jobs, oldest waiting job, overdue approvals) of all
   * five queues at each scrape. They are the same for every process, so one process per fleet
   * exports them: `pyexec exporter`, or `pyexec up`. @defaultValue true when this process runs every stage
   */
  readonly queueMetrics?: boolean;
  /** Also export BullMQ's own `bullmq_job_count` family. @defaultValue same as queueMetrics */
  readonly bullmqMetrics?: boolean;
  /** Test hook called at each FaultPoint (see stage-runtime.ts); never set in production. */
  readonly faults?: (point: FaultPoint) => void;
}

/** A dependency that can say whether it is usable now (an executor with kernels, ...). */
interface MaybeReady {
  ready?(): Promise<boolean>;
}

/** Resolves to `fallback` if `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
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
  private readonly running = new RunningJobs();
  /** Settles failed jobs whose requests are open (see reaper.ts). */
  reaper: Reaper | undefined;
  /** Readiness checks beyond Redis, by name (e.g. `executor`). */
  private readonly readiness = new Map<string, () => Promise<boolean>>();
  private presence: FleetPresence | undefined;
  /** How this process's kernels and runners are confined (execution workers that built executors). */
  confinement: ConfinementStatus | undefined;
  /** On any exit, running code is interrupted: a detached Python process must not outlive us. */
  private readonly onExit = () => this.running.interrupt('the worker process exited', this.metrics);

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
    const redis = createRedis(options.redisUrl, 'worker', {}, config.pyexec.redis.cluster);
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
    // Tracing (config pyexec.telemetry, OTEL_* env): off without an endpoint. Its shutdown, which
    // flushes the last spans, is the last close step.
    const telemetry = await startTelemetry(config.pyexec.telemetry, {
      attributes: { 'pyexec.stages': [...stages] },
      logger,
    });
    this.cleanups.push(() => telemetry.shutdown());
    await this.redis.ping();
    await this.checkEvictionPolicy();
    const deps: ReaperDeps = {
      config,
      queues: this.queues,
      store: this.store,
      logger,
      metrics: this.metrics,
      ...(this.options.faults ? { fault: this.options.faults } : {}),
    };
    this.cleanups.push(() => this.queues.close());
    const reaper = new Reaper({ deps, redis: this.redis, prefix, logger: logger.child({ component: 'reaper' }) });
    this.reaper = reaper;
    for (const stage of stages) {
      const processor = await this.processorFor(stage, deps);
      const worker = new Worker(QueueName[stage], processor, {
        connection: this.redis,
        prefix,
        concurrency: config.pyexec.concurrency[stage],
        lockDuration: config.pyexec.lock_duration_ms,
        stalledInterval: config.pyexec.stalled_interval_ms,
        // BullMQ delivers at least once. Code that may write to EPICS must never run twice because
        // a worker died: a stalled execution fails (and the reaper ends or re-queues it) instead of
        // running again.
        maxStalledCount: stage === 'execution' ? 0 : 1,
        // Started below, after the start-up sweep.
        autorun: false,
      });
      worker.on('error', (err) => logger.error({ err: err.message, stage }, 'worker error'));
      this.running.track(stage, worker);
      // Outcomes per stage for `pyexec status` (failure rate): the processor's return value (the
      // result stage returns the request's status, which is not its own: it counts as `ok`), or
      // `retry` / `error` when BullMQ retries or gives up on a thrown error.
      const outcome = (o: string) => recordOutcome(this.redis, prefix, stage, o).catch(() => {});
      worker.on('completed', (job) =>
        outcome(stage !== 'result' && typeof job.returnvalue === 'string' ? job.returnvalue : 'ok'),
      );
      worker.on('failed', (job, err) => {
        outcome(
          job && job.attemptsMade < (job.opts.attempts ?? 1) && err.name !== 'UnrecoverableError' ? 'retry' : 'error',
        );
        // The job this worker just failed (a stalled one it picked up, or one that could not hand
        // off) is settled at once; the periodic sweep is there for when this process dies first.
        if (job?.id)
          reaper
            .settle(stage, job.id)
            .catch((e) =>
              logger.warn({ err: (e as Error).message, jobId: job.id }, 'settle failed; left to the sweep'),
            );
      });
      this.workers.set(stage, worker);
      this.cleanups.push(() => worker.close(true));
    }
    process.on('exit', this.onExit);
    this.cleanups.push(
      await watchCancellations(this.redis, prefix, this.running, logger, (requestId) => {
        // A held request ends now, not at its deadline (idempotent across processes).
        if (this.workers.has('approval')) this.approvals.withdraw(requestId).catch(() => {});
      }),
    );
    const slots = Object.fromEntries(stages.map((s) => [s, config.pyexec.concurrency[s]]));
    const { heartbeat_ms: heartbeatMs, ttl_ms: ttlMs } = config.pyexec.presence;
    this.presence = new FleetPresence(
      this.redis,
      prefix,
      slots,
      () => this.state,
      { heartbeatMs, ttlMs },
      () => (this.confinement ? { confinement: describeConfinement(this.confinement) } : {}),
    );
    this.cleanups.push(() => this.presence!.stop());
    if (stages.includes('result')) this.pruneExecutionFolders();
    if (this.opsPort() !== null) await this.serveOps();
    // Failed jobs that nobody settled (every process that could was down) are settled before this
    // process takes new work; then its workers start, and the sweep goes on periodically.
    await reaper.sweep();
    this.cleanups.push(() => reaper.stop());
    reaper.start();
    for (const [stage, worker] of this.workers) {
      worker.run().catch((err) => logger.error({ err: (err as Error).message, stage }, 'worker stopped'));
    }
    this.state = 'running';
    await this.presence.start();
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
        let executors = this.options.executors;
        if (executors) {
          // Injected executors: ready while at least one is usable (one without a check counts as usable).
          const given = executors;
          this.readiness.set('executor', async () => {
            const found = Object.values(given).filter((e): e is Executor => e !== undefined);
            const ok = await Promise.all(found.map((e) => (e as MaybeReady).ready?.() ?? true));
            return ok.some(Boolean);
          });
        } else {
          // The configured methods: the local subprocess and the Jupyter kernel pool.
          const set = await createExecutors(config, {
            redisUrl: this.options.redisUrl,
            prefix: keyPrefix(config.pyexec.redis.prefix),
            logger: this.options.logger,
            metrics: this.metrics,
          });
          this.cleanups.push(() => set.close());
          this.readiness.set('executor', () => set.ready());
          this.confinement = set.confinement;
          executors = set.executors;
        }
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

  /** The option when given (null included: no server), else the config. */
  private opsPort(): number | null {
    return this.options.metricsPort !== undefined ? this.options.metricsPort : this.options.config.pyexec.metrics_port;
  }

  private async serveOps(): Promise<void> {
    const opts: OpsServerOptions = {
      metrics: this.metrics,
      port: this.opsPort()!,
      host: this.options.config.pyexec.metrics_host,
      setting: 'pyexec.metrics_port (PYEXEC_METRICS_PORT, --metrics-port)',
      state: () => this.state,
      ready: () => this.readinessChecks(),
      info: () => (this.confinement ? { confinement: this.confinement } : {}),
      beforeScrape: () => this.refreshQueueGauges(),
      ...((this.options.bullmqMetrics ?? this.exportsQueueMetrics())
        ? { extraMetrics: () => this.whenRedisUp(bullmqExposition(this.queues, STAGES), '') }
        : {}),
    };
    const server = await startOpsServer(opts);
    this.metricsPort = server.port;
    this.cleanups.unshift(() => server.close());
  }

  /** Retention on disk: result workers remove execution folders as Redis expires their records. */
  private pruneExecutionFolders(): void {
    const { pyexec, python_executor } = this.options.config;
    const pruner = new ExecutionFolderPruner({
      root: pyexec.execution_root,
      finishedMs: pyexec.retention.finished_seconds * 1000,
      abandonedMs:
        (pyexec.retention.finished_seconds +
          pyexec.approval.max_timeout_seconds +
          python_executor.execution_timeout_seconds) *
        1000,
      intervalMs: pyexec.retention.prune_interval_ms,
      logger: this.options.logger,
    });
    pruner.start();
    this.cleanups.push(() => pruner.stop());
  }

  /** Redis answers, and each stage dependency is usable. */
  async readinessChecks(): Promise<Record<string, boolean>> {
    const checks: Record<string, boolean> = {
      redis: await this.whenRedisUp(
        this.redis.ping().then((r) => r === 'PONG'),
        false,
      ),
    };
    for (const [name, check] of this.readiness)
      checks[name] = await within(
        check().catch(() => false),
        2000,
        false,
      );
    return checks;
  }

  /** Worker commands wait out a lost connection; what a scrape or probe asks must not wait. */
  private whenRedisUp<T>(work: Promise<T>, fallback: T): Promise<T> {
    if (this.redis.status !== 'ready') {
      work.catch(() => {});
      return Promise.resolve(fallback);
    }
    return within(work, 2000, fallback);
  }

  private exportsQueueMetrics(): boolean {
    return this.options.queueMetrics ?? STAGES.every((s) => (this.options.stages ?? STAGES).includes(s));
  }

  /** Scrape-time gauges: this process's job slots, and the queue-wide gauges where it exports them. */
  async refreshQueueGauges(): Promise<void> {
    for (const [stage, worker] of this.workers) {
      const busy = this.running.busy(stage);
      this.metrics.workerSlots.set({ stage, state: 'total' }, worker.concurrency);
      this.metrics.workerSlots.set({ stage, state: 'busy' }, busy);
    }
    this.metrics.ready.set(
      Object.values(await this.readinessChecks()).every(Boolean) && this.state === 'running' ? 1 : 0,
    );
    if (this.exportsQueueMetrics()) {
      await this.whenRedisUp(refreshQueueMetrics(this.redis, this.queues, STAGES, this.metrics), undefined);
    }
  }

  /**
   * Drains, then closes every connection. From the first moment the state is `draining` (readiness
   * false) and no new job is taken; running jobs get `graceMs` to finish. Those still running a
   * short settle time before the end (a quarter of the grace, 5 s at most) are interrupted (see
   * interruptRunning) so that each ends or is re-queued before the process goes. `graceMs` 0
   * closes at once and leaves running jobs to BullMQ's stall detection and the reaper (reaper.ts).
   */
  async close(graceMs = 0): Promise<void> {
    this.closing ??= (async () => {
      this.state = 'draining';
      const logger = this.options.logger;
      await this.presence?.refresh();
      if (graceMs > 0 && this.workers.size > 0) {
        const drained = Promise.allSettled([...this.workers.values()].map((w) => w.close())).then(() => true);
        const settleMs = Math.min(5000, Math.floor(graceMs / 4));
        if (!(await within(drained, graceMs - settleMs, false))) {
          logger.warn({ graceMs, running: this.running.size }, 'grace period over; interrupting running jobs');
          this.running.interrupt('the worker was shut down before the job finished (grace period over)', this.metrics);
          if (!(await within(drained, settleMs, false)))
            logger.warn('interrupted jobs did not settle; closing by force');
        }
      }
      process.off('exit', this.onExit);
      await runCloseSteps(this.cleanups, logger);
      this.redis.disconnect();
      this.state = 'stopped';
    })();
    return this.closing;
  }
}
