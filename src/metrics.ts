import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The fleet's metrics, one registry per process. Names are `pyexec_<thing>_<unit>`, durations in
 * seconds, labels low-cardinality (stage, outcome, error class, generator, mode): never job ids.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly stageDuration = new Histogram({
    name: 'pyexec_stage_duration_seconds',
    help: 'Time a stage worker spent on one job, by outcome',
    labelNames: ['stage', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: 'pyexec_queue_wait_seconds',
    help: 'Time a job waited in its queue before a worker took it',
    labelNames: ['stage'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'pyexec_retries_total',
    help: 'Retries, by the stage that failed and the error class (code: regenerate; infrastructure: same stage)',
    labelNames: ['stage', 'error_class'] as const,
    registers: [this.registry],
  });
  readonly terminal = new Counter({
    name: 'pyexec_requests_terminal_total',
    help: 'Requests that reached a terminal state',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly queueJobs = new Gauge({
    name: 'pyexec_queue_jobs',
    help: 'Jobs per queue and state: waiting, active, delayed (retry backoff), held (approval-hold, awaiting a person), failed. Queue-wide, refreshed at scrape time; aggregate with max by (queue, state)',
    labelNames: ['queue', 'state'] as const,
    registers: [this.registry],
  });
  readonly queueOldestWaiting = new Gauge({
    name: 'pyexec_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job waiting for a worker, per queue (0 when none waits); refreshed at scrape time',
    labelNames: ['queue'] as const,
    registers: [this.registry],
  });
  readonly approvalOverdue = new Gauge({
    name: 'pyexec_approval_overdue_jobs',
    help: 'Held jobs whose approval deadline has passed but that no approval-hold worker has settled yet',
    registers: [this.registry],
  });
  readonly stalledJobs = new Counter({
    name: 'pyexec_stalled_jobs_total',
    help: 'Failed jobs of open requests settled by the reaper (worker died, lock lost, data unusable), by stage and what was done: requeued (run again as a new job), needs_review (execution that may have written), failed (the request ended)',
    labelNames: ['stage', 'action'] as const,
    registers: [this.registry],
  });
  readonly interruptedJobs = new Counter({
    name: 'pyexec_shutdown_interrupted_jobs_total',
    help: 'Running jobs interrupted because the shutdown grace period ended, by stage',
    labelNames: ['stage'] as const,
    registers: [this.registry],
  });
  readonly workerSlots = new Gauge({
    name: 'pyexec_worker_slots',
    help: "This process's job slots (worker concurrency) per stage, and how many are busy",
    labelNames: ['stage', 'state'] as const,
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: 'pyexec_ready',
    help: 'Whether this process is ready to take jobs (same checks as /readyz): 1 ready, 0 not',
    registers: [this.registry],
  });
  readonly generatorTokens = new Counter({
    name: 'pyexec_generator_tokens_total',
    help: 'LLM tokens used by code generation',
    labelNames: ['generator', 'direction'] as const,
    registers: [this.registry],
  });
  readonly generatorDuration = new Histogram({
    name: 'pyexec_generator_duration_seconds',
    help: 'Time one code generation took, by generator and outcome',
    labelNames: ['generator', 'outcome'] as const,
    buckets: [0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly analysisFindings = new Counter({
    name: 'pyexec_analysis_findings_total',
    help: 'Static analysis findings, by rule and severity',
    labelNames: ['rule', 'severity'] as const,
    registers: [this.registry],
  });
  readonly approvalDecisions = new Counter({
    name: 'pyexec_approval_decisions_total',
    help: 'Approval outcomes, by outcome (approved, rejected, expired, cancelled by the producer)',
    labelNames: ['decision'] as const,
    registers: [this.registry],
  });
  readonly approvalDecisionSeconds = new Histogram({
    name: 'pyexec_approval_decision_seconds',
    help: 'Time from hold to decision',
    labelNames: ['decision'] as const,
    buckets: [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 14_400, 86_400],
    registers: [this.registry],
  });
  readonly approvalHeldJobs = new Gauge({
    name: 'pyexec_approval_held_jobs',
    help: 'Jobs waiting for an approval decision (refreshed at scrape time)',
    registers: [this.registry],
  });
  readonly processState = new Gauge({
    name: 'pyexec_process_state',
    help: 'Named process state: 1 for the current state',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  readonly kernels = new Gauge({
    name: 'pyexec_kernels',
    help: 'Kernels of the container pool, by mode and state (idle, leased, recycling), as this process last saw them',
    labelNames: ['mode', 'state'] as const,
    registers: [this.registry],
  });
  readonly kernelLeaseWait = new Histogram({
    name: 'pyexec_kernel_lease_wait_seconds',
    help: 'Time a request waited for a kernel lease, by mode and outcome (leased, timeout, aborted)',
    labelNames: ['mode', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 120],
    registers: [this.registry],
  });
  readonly kernelReplacements = new Counter({
    name: 'pyexec_kernel_replacements_total',
    help: 'Kernels reset (restart) or replaced (a new kernel) before reuse, by mode, action and reason (after_use, expired_lease, abandoned_reset)',
    labelNames: ['mode', 'action', 'reason'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'pyexec_' });
  }
}
