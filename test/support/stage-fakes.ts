/**
 * In-memory fakes for unit tests of the stage processors (src/workers/*-worker.ts): the queue set
 * (StageQueues), the request store (StageStore), BullMQ jobs, and the plug-ins the stages close
 * over (generator, analyzer, executor, approvals). No Redis, no Python, no Jupyter: a processor
 * runs in milliseconds, and every hand-off and store write it makes is recorded for assertions.
 *
 * The fakes keep the semantics the stages rely on:
 * - an `add` whose `opts.jobId` exists already is ignored, as BullMQ does (idempotent hand-offs);
 * - `end` returns what RequestStore.end returns (`recorded`, `already_ended`, `missing`), and a
 *   request that has ended takes no more status, hold or output (the Lua scripts' guards).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Job, JobsOptions } from 'bullmq';
import type { AnalysisReport, Analyzer } from '../../src/analysis/analyzer.js';
import { decidePolicy } from '../../src/analysis/policy.js';
import type { ApprovalService } from '../../src/approval/approval-service.js';
import { type Config, parseConfig } from '../../src/config.js';
import type { ExecutionOutcome, ExecutionTask, Executor } from '../../src/executors/executor.js';
import type { CodeGenerator, GeneratedCode, GenerationRequest } from '../../src/generators/code-generator.js';
import { silentLogger } from '../../src/logger.js';
import { Metrics } from '../../src/metrics.js';
import type { ExecutionMethod } from '../../src/modes.js';
import type { AnalysisJobInput } from '../../src/queues/analysis.js';
import { AnalysisRecord, type ApprovalRecord, type Envelope, STAGES, type Stage } from '../../src/queues/envelope.js';
import { ExecutionJob } from '../../src/queues/execution.js';
import type { GenerationJobInput } from '../../src/queues/generation.js';
import { PythonExecutionRequest, type PythonExecutionRequestInput } from '../../src/request.js';
import { executionFolderFor } from '../../src/store/execution-folder.js';
import type { EndResult, OutputEventInput, RequestStatus, StageStart } from '../../src/store/request-store.js';
import { type StageDeps, type StageQueues, type StageStore, sha256 } from '../../src/workers/stage-runtime.js';

// --- The queue set -------------------------------------------------------------------------------

/** One `add` a stage made. */
export interface AddedJob {
  readonly stage: Stage;
  readonly name: string;
  readonly data: Record<string, unknown>;
  readonly opts: JobsOptions;
  /** The job id (`opts.jobId`). */
  readonly id: string;
}

/**
 * A recording queue set. `added` holds the jobs a queue took; `ignored` the adds whose job id
 * existed already (BullMQ returns the existing job and adds nothing).
 */
export class FakeQueues {
  readonly added: AddedJob[] = [];
  readonly ignored: AddedJob[] = [];
  readonly queues: StageQueues;

  constructor() {
    const ids = new Set<string>();
    const queueOf = (stage: Stage) => ({
      add: async (name: string, data: unknown, opts: JobsOptions = {}) => {
        const id = opts.jobId ?? `auto-${this.added.length + this.ignored.length + 1}`;
        const job: AddedJob = { stage, name, data: data as Record<string, unknown>, opts, id };
        if (ids.has(id)) this.ignored.push(job);
        else {
          ids.add(id);
          this.added.push(job);
        }
        return { id, name, data } as unknown as Job;
      },
    });
    this.queues = Object.fromEntries(STAGES.map((s) => [s, queueOf(s)])) as unknown as StageQueues;
  }

  /** The one job added since the start (fails the test when there are none or several). */
  only(): AddedJob {
    if (this.added.length !== 1) {
      throw new Error(`expected exactly one job added, got ${this.added.length}: ${this.added.map((j) => j.id)}`);
    }
    return this.added[0]!;
  }

  /** The last job added. */
  last(): AddedJob {
    const job = this.added.at(-1);
    if (!job) throw new Error('no job was added');
    return job;
  }
}

// --- The request store ---------------------------------------------------------------------------

export interface EndedRecord {
  readonly status: RequestStatus;
  readonly response: unknown;
  readonly ttlSeconds: number;
}

/**
 * The request record in memory, with RequestStore's guards: a request must be `submit`ted first
 * (`end` answers `missing` otherwise); after `end`, status, hold and output changes are ignored.
 */
export class FakeStore implements StageStore {
  readonly statuses: { requestId: string; status: RequestStatus; data?: Record<string, unknown> }[] = [];
  readonly events: { requestId: string; type: string; status?: RequestStatus; data?: Record<string, unknown> }[] = [];
  /** Every setHold call, in order (null clears the hold). */
  readonly holdCalls: { requestId: string; hold: { holdJobId: string; deadline: number } | null }[] = [];
  readonly holds = new Map<string, { holdJobId: string; deadline: number }>();
  readonly ended = new Map<string, EndedRecord>();
  /** Every `end` call with what it returned. */
  readonly endCalls: { requestId: string; status: RequestStatus; result: EndResult }[] = [];
  readonly output: { requestId: string; events: OutputEventInput[] }[] = [];
  readonly summaries: { requestId: string; droppedBytes: number }[] = [];
  private readonly known = new Set<string>();
  private readonly cancels = new Set<string>();

  /** Creates the record (the client's submit). */
  submit(requestId: string): this {
    this.known.add(requestId);
    return this;
  }

  /** The producer's cancel (RequestStore.requestCancel). */
  requestCancel(requestId: string): void {
    this.cancels.add(requestId);
  }

  private open(requestId: string): boolean {
    return this.known.has(requestId) && !this.ended.has(requestId);
  }

  async hasEnded(requestId: string): Promise<boolean> {
    return this.ended.has(requestId);
  }
  async isCancelRequested(requestId: string): Promise<boolean> {
    return this.cancels.has(requestId);
  }
  /** RequestStore.beginStage's answers, from the three checks it folds into one script. */
  async beginStage(
    requestId: string,
    status: RequestStatus,
    data: Record<string, unknown>,
    honourCancel: boolean,
  ): Promise<StageStart> {
    if (await this.hasEnded(requestId)) return 'ended';
    if (honourCancel && (await this.isCancelRequested(requestId))) return 'cancel';
    await this.setStatus(requestId, status, data);
    return 'started';
  }
  async setStatus(requestId: string, status: RequestStatus, data?: Record<string, unknown>): Promise<void> {
    if (this.open(requestId)) this.statuses.push({ requestId, status, ...(data ? { data } : {}) });
  }
  async setHold(requestId: string, hold: { holdJobId: string; deadline: number } | null): Promise<void> {
    if (!this.open(requestId)) return;
    this.holdCalls.push({ requestId, hold });
    if (hold) this.holds.set(requestId, hold);
    else this.holds.delete(requestId);
  }
  async end(requestId: string, status: RequestStatus, response: unknown, ttlSeconds: number): Promise<EndResult> {
    const result: EndResult = !this.known.has(requestId)
      ? 'missing'
      : this.ended.has(requestId)
        ? 'already_ended'
        : 'recorded';
    if (result === 'recorded') {
      // The response goes through JSON, as it does into the Redis hash.
      this.ended.set(requestId, { status, response: JSON.parse(JSON.stringify(response)), ttlSeconds });
      this.holds.delete(requestId);
      this.events.push({ requestId, type: 'finished', status, data: { status } });
    }
    this.endCalls.push({ requestId, status, result });
    return result;
  }
  async event(requestId: string, type: string, status?: RequestStatus, data?: Record<string, unknown>): Promise<void> {
    this.events.push({ requestId, type, ...(status ? { status } : {}), ...(data ? { data } : {}) });
  }
  async appendOutput(
    requestId: string,
    events: readonly OutputEventInput[],
  ): Promise<{ sent: number; dropped: number; ended: boolean }> {
    if (!this.open(requestId)) return { sent: 0, dropped: 0, ended: true };
    this.output.push({ requestId, events: [...events] });
    return { sent: events.length, dropped: 0, ended: false };
  }
  async outputSummary(requestId: string, droppedBytes = 0): Promise<void> {
    this.summaries.push({ requestId, droppedBytes });
  }
}

// --- BullMQ jobs ---------------------------------------------------------------------------------

export interface FakeJob extends Job {
  /** What the processor passed to updateProgress. */
  readonly progress: unknown[];
}

/**
 * A BullMQ job as a processor sees it: data, id, attemptsMade (attempts already failed), opts.attempts.
 */
export function fakeJob(
  data: unknown,
  options: { id?: string; attemptsMade?: number; attempts?: number } = {},
): FakeJob {
  const progress: unknown[] = [];
  return {
    id: options.id ?? 'job-1',
    name: 'job',
    data,
    attemptsMade: options.attemptsMade ?? 0,
    opts: { attempts: options.attempts ?? 3 },
    progress,
    async updateProgress(p: unknown) {
      progress.push(p);
    },
  } as unknown as FakeJob;
}

/** The job a stage added, as the next stage's worker takes it (its data, its id). */
export function takeJob(added: AddedJob, options: { attemptsMade?: number; attempts?: number } = {}): FakeJob {
  return fakeJob(structuredClone(added.data), { id: added.id, ...options });
}

// --- Requests and envelopes ----------------------------------------------------------------------

export const REQUEST_ID = '0b5a7c1e-2f3d-4e5f-8a9b-0c1d2e3f4a5b';
export const THREAD_ID = 'thread-unit';
export const SUBMITTED_AT = Date.parse('2026-12-03T12:00:00Z');

/** A producer's request, validated as the client validates it. */
export function request(overrides: Partial<PythonExecutionRequestInput> = {}) {
  return PythonExecutionRequest.parse({
    user_query: 'read the beam current',
    task_objective: 'read SR:CURRENT and report it',
    execution_folder_name: 'unit',
    ...overrides,
  });
}

/**
 * The first generation job as the client enqueues it (PyexecClient.enqueue): without the fleet's
 * config the producer leaves the execution method and folder out (`placed: false`).
 */
export function generationJobData(
  options: { request?: Partial<PythonExecutionRequestInput>; placed?: { method: ExecutionMethod; root: string } } = {},
): GenerationJobInput {
  const req = request(options.request);
  return {
    requestId: REQUEST_ID,
    threadId: THREAD_ID,
    request: req,
    submittedAt: SUBMITTED_AT,
    attempt: 1,
    enqueuedAt: Date.now(),
    ...(options.placed
      ? {
          executionMethod: req.execution_method ?? options.placed.method,
          executionFolder: executionFolderFor(
            options.placed.root,
            req.execution_folder_name,
            REQUEST_ID,
            new Date(SUBMITTED_AT),
          ),
        }
      : {}),
  };
}

/** A placed envelope carrying code (what the generation stage hands to analysis). */
export function analysisJobData(world: StageWorld, code: string, extra: Partial<Envelope> = {}): AnalysisJobInput {
  const base = generationJobData({ placed: { method: world.config.execution.execution_method, root: world.root } });
  return {
    ...base,
    executionMethod: base.executionMethod!,
    executionFolder: base.executionFolder!,
    code,
    codeSha256: sha256(code),
    generator: 'scripted',
    ...extra,
  } as AnalysisJobInput;
}

/** An analysis record as the analysis stage writes it (its reportSha256 over the shown fields). */
export function analysisRecord(overrides: Partial<Omit<AnalysisRecord, 'reportSha256'>> = {}): AnalysisRecord {
  const shown = {
    syntaxOk: true,
    hasWrites: false,
    hasReads: true,
    risk: 'low' as const,
    findings: [],
    writes: [],
    mode: 'read_only' as const,
    approvalRequired: false,
    approvalReason: 'Code contains no control system writes (read-only or pure Python)',
    analyzer: 'scripted',
    ...overrides,
  };
  return AnalysisRecord.parse({ ...shown, reportSha256: sha256(JSON.stringify(shown)) });
}

/** An approver's decision bound to this code and analysis. */
export function approvalRecord(
  code: string,
  analysis: AnalysisRecord,
  overrides: Partial<ApprovalRecord> = {},
): ApprovalRecord {
  return {
    holdJobId: `${REQUEST_ID}-approval-1`,
    decision: 'approved',
    approver: 'alice',
    decidedAt: Date.now(),
    codeSha256: sha256(code),
    analysisSha256: analysis.reportSha256,
    mode: analysis.mode,
    ...overrides,
  };
}

/** An execution job (validated by the stage's schema) for this code. */
export function executionJobData(
  world: StageWorld,
  code: string,
  analysis: AnalysisRecord,
  extra: Partial<Envelope> = {},
): ExecutionJob {
  return ExecutionJob.parse({ ...analysisJobData(world, code), analysis, ...extra });
}

// --- Plug-ins ------------------------------------------------------------------------------------

/** One reply of ScriptedCodeGenerator: code, an error to throw, or a function of the request. */
export type GeneratorReply = string | Error | ((req: GenerationRequest) => GeneratedCode | Promise<GeneratedCode>);

/** Answers with its replies in order (the last one repeats); records what it was asked. */
export class ScriptedCodeGenerator implements CodeGenerator {
  readonly name = 'scripted';
  readonly calls: GenerationRequest[] = [];
  constructor(private readonly replies: readonly GeneratorReply[]) {}

  async generate(req: GenerationRequest): Promise<GeneratedCode> {
    this.calls.push(structuredClone(req));
    const reply = this.replies[Math.min(this.calls.length - 1, this.replies.length - 1)];
    if (reply === undefined) throw new Error('ScriptedCodeGenerator has no replies');
    if (reply instanceof Error) throw reply;
    if (typeof reply === 'function') return reply(req);
    return { code: reply, generator: this.name, usage: { inputTokens: 10, outputTokens: 5 } };
  }
}

/**
 * Reports on code by markers, as the static analysis would: `caput(` is an EPICS write (high
 * risk), `caget(` a read, a line `<<SYNTAX>>` a syntax error at that line, column 4 (0-based).
 */
export class MarkerAnalyzer implements Analyzer {
  readonly name = 'scripted';
  readonly analyzed: string[] = [];

  async analyze(code: string): Promise<AnalysisReport> {
    this.analyzed.push(code);
    const lines = code.split('\n');
    const writes = lines.flatMap((l, i) => (l.includes('caput(') ? [i + 1] : []));
    const bad = lines.findIndex((l) => l.includes('<<SYNTAX>>'));
    return {
      syntaxOk: bad < 0,
      ...(bad >= 0 ? { syntaxError: { message: 'invalid syntax', line: bad + 1, column: 4 } } : {}),
      hasWrites: writes.length > 0,
      hasReads: code.includes('caget('),
      risk: writes.length > 0 ? 'high' : 'low',
      findings: writes.map((line) => ({
        rule: 'epics-write',
        severity: 'high' as const,
        line,
        column: 0,
        message: 'caput writes to EPICS',
      })),
      controlSystemType: 'epics',
      assignsResults: code.includes('results ='),
      detectedPatterns: { writes: writes.length > 0 ? ['epics.caput'] : [], reads: [] },
      writeSites: writes.map((line) => ({
        line,
        column: 0,
        call: 'epics.caput',
        pvs: ['SR:SETPOINT'],
        target: "'SR:SETPOINT'",
        value: '1.0',
      })),
    };
  }
}

/** One reply of ScriptedExecutor: an outcome, an error to throw, or a function of the task. */
export type ExecutorReply =
  | ExecutionOutcome
  | Error
  | ((task: ExecutionTask, signal: AbortSignal) => ExecutionOutcome | Promise<ExecutionOutcome>);

/** Answers with its replies in order (the last one repeats); records every task it was given. */
export class ScriptedExecutor implements Executor {
  readonly tasks: ExecutionTask[] = [];
  constructor(
    private readonly replies: readonly ExecutorReply[],
    readonly method: ExecutionMethod = 'container',
  ) {}

  async execute(task: ExecutionTask, signal: AbortSignal): Promise<ExecutionOutcome> {
    this.tasks.push(task);
    const reply = this.replies[Math.min(this.tasks.length - 1, this.replies.length - 1)];
    if (reply === undefined) throw new Error('ScriptedExecutor has no replies');
    if (reply instanceof Error) throw reply;
    if (typeof reply === 'function') return reply(task, signal);
    return reply;
  }
}

export const outcomes = {
  ok(results: unknown = { value: 42 }, stdout = 'hello\n'): ExecutionOutcome {
    return { status: 'ok', results, stdout, stderr: '', figures: [], durationMs: 12 };
  },
  codeError(message = "NameError: name 'x' is not defined"): ExecutionOutcome {
    return {
      status: 'code_error',
      errorType: 'runtime',
      errorName: 'NameError',
      message,
      traceback: 'Traceback (most recent call last):\n  ...',
      stdout: '',
      stderr: '',
      durationMs: 3,
    };
  },
  refused(message = 'limits violation: SR:SETPOINT above 10'): ExecutionOutcome {
    return { status: 'refused', errorType: 'limits_violation', message, stdout: '', stderr: '', durationMs: 1 };
  },
};

/** The approval service as the hold worker uses it: `settle` answers with a scripted record. */
export class FakeApprovals {
  readonly settled: Parameters<ApprovalService['settle']>[0][] = [];
  constructor(
    private readonly decide: (
      held: Parameters<ApprovalService['settle']>[0],
    ) => ApprovalRecord | Promise<ApprovalRecord> | Error,
  ) {}

  async settle(held: Parameters<ApprovalService['settle']>[0]): Promise<ApprovalRecord> {
    this.settled.push(held);
    const r = await this.decide(held);
    if (r instanceof Error) throw r;
    return r;
  }

  /** As the processor's dependency (it only calls `settle`). */
  get service(): Pick<ApprovalService, 'settle'> {
    return this;
  }
}

// --- The world a processor runs in ---------------------------------------------------------------

export interface StageWorld {
  readonly root: string;
  readonly config: Config;
  readonly queues: FakeQueues;
  readonly store: FakeStore;
  readonly metrics: Metrics;
  readonly deps: StageDeps;
  /** Fault points the stages reached, in order. */
  readonly faults: string[];
  /** Removes the execution root. */
  close(): void;
}

/**
 * A config (parseConfig of `doc`, execution_root in a fresh temp dir, no environment overrides),
 * the fakes, and the deps every processor takes. The request REQUEST_ID is submitted.
 */
export function stageWorld(doc: Record<string, unknown> = {}): StageWorld {
  const root = mkdtempSync(path.join(tmpdir(), 'pyexec-stage-'));
  const pyexec = (doc['pyexec'] ?? {}) as Record<string, unknown>;
  const config = parseConfig({ ...doc, pyexec: { ...pyexec, execution_root: root } }, {});
  const queues = new FakeQueues();
  const store = new FakeStore().submit(REQUEST_ID);
  const metrics = new Metrics({ defaultMetrics: false });
  const faults: string[] = [];
  return {
    root,
    config,
    queues,
    store,
    metrics,
    faults,
    deps: {
      config,
      queues: queues.queues,
      store,
      logger: silentLogger(),
      metrics,
      fault: (p) => void faults.push(p),
    },
    close: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Approval only for EPICS writes, writes allowed: reads run at once, writes are held. */
export const WRITES_HELD = {
  approval: { global_mode: 'selective', capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } } },
  control_system: { writes_enabled: true },
};

/** The real policy (src/analysis/policy.ts): it is pure TypeScript. */
export { decidePolicy };

/** A counter's value for these labels (0 when never incremented). */
export async function counted(
  metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> },
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}
