import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ApprovalConflictError, ApprovalExpiredError, ApprovalNotFoundError, InvalidRequestError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { ApprovalDecisionInput, ApprovalJob } from '../queues/approval.js';
import type { ApprovalRecord } from '../queues/envelope.js';
import type { PythonExecutionRequest } from '../request.js';
import { ApprovalStaleError } from './errors.js';

/** What an approver is shown about a held job. */
export interface HeldJob {
  readonly holdJobId: string;
  readonly requestId: string;
  readonly threadId: string;
  readonly userQuery: string;
  readonly taskObjective: string;
  /** The whole request as the producer sent it. */
  readonly request: PythonExecutionRequest;
  readonly code: string;
  readonly codeSha256: string;
  readonly analysis: ApprovalJob['analysis'];
  /** sha256 of the analysis report shown with the code (`analysis.reportSha256`). */
  readonly analysisSha256: string;
  readonly mode: 'read_only' | 'write_access';
  readonly risk: string;
  readonly deadline: number;
  readonly heldAt: number;
  readonly attempt: number;
}

/** Where a hold job stands: waiting for a person, past its deadline but not yet settled, or decided. */
export type HoldStatus = 'held' | 'expiring' | ApprovalRecord['decision'];

export interface HeldJobDetail extends HeldJob {
  readonly status: HoldStatus;
  readonly decision: ApprovalRecord | null;
}

/** One decision in the audit trail: the record, plus who asked from where. */
export interface AuditEntry extends ApprovalRecord {
  /** Redis stream id (time-ordered). */
  readonly id: string;
  readonly requestId: string;
  /** The tool that sent the decision (`web`, `cli`, `api`, `deadline`, ...). */
  readonly source?: string;
  /** The client's network address, when the decision came over HTTP. */
  readonly address?: string;
}

/** What the caller of `decide` vouches for, beyond the decision itself. */
export interface DecisionContext {
  /**
   * The hashes of the code and analysis report the approver was shown. When given, a held job
   * whose code or analysis differs now is refused with ApprovalStaleError and nothing is decided.
   */
  readonly expect?: { readonly codeSha256?: string; readonly analysisSha256?: string };
  /** The client's network address, for the audit trail. */
  readonly address?: string;
}

export interface ApprovalServiceOptions {
  /** How long a decision record is kept (seconds); the audit trail is kept regardless. */
  readonly retentionSeconds: number;
  readonly metrics?: Metrics;
}

/** States in which a hold job is still waiting: a decision promotes it out of them. */
const HELD_STATES = ['delayed', 'waiting', 'prioritized'] as const;

/**
 * Records a decision and appends it to the audit stream in one step: SET NX on the job's decision
 * key is the arbiter, and the audit entry is written only by the winner, so the audit trail holds
 * exactly the decisions that stand, even when the process dies mid-way.
 */
const DECIDE_SCRIPT = `
if not redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]), 'NX') then return false end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))`;

/**
 * Approval decisions. One Redis key per held job is the arbiter (SET NX): the first decision
 * wins, whether a person's or the deadline's, and every later one is a conflict. Each decision is
 * appended to the audit stream (who, when, which code hash, which payload, from where) and the
 * held (delayed) job is promoted so the approval-hold worker routes it at once.
 */
export class ApprovalService {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly queue: Queue,
    private readonly options: ApprovalServiceOptions = { retentionSeconds: 604_800 },
  ) {}

  decisionKey(holdJobId: string): string {
    return `${this.prefix}:approval:${holdJobId}`;
  }
  get auditKey(): string {
    return `${this.prefix}:audit`;
  }

  /** Jobs waiting for a person (undecided, deadline not passed), oldest deadline first. */
  async listHeld(): Promise<HeldJob[]> {
    const jobs = await this.queue.getJobs([...HELD_STATES], 0, 999, true);
    const candidates = jobs.map((job) => this.toHeld(job)).filter((h): h is HeldJob => h !== null);
    if (candidates.length === 0) return [];
    const decided = await this.redis.mget(candidates.map((h) => this.decisionKey(h.holdJobId)));
    const now = Date.now();
    return candidates.filter((h, i) => decided[i] === null && h.deadline > now).sort((a, b) => a.deadline - b.deadline);
  }

  /** A hold job, held or already decided. Throws ApprovalNotFoundError for an unknown id. */
  async show(holdJobId: string): Promise<HeldJobDetail> {
    const job = await Job.fromId(this.queue, holdJobId);
    const held = job && this.toHeld(job);
    if (!held) throw new ApprovalNotFoundError(`no held job ${holdJobId}`);
    const decision = await this.decisionOf(holdJobId);
    const status: HoldStatus = decision ? decision.decision : Date.now() > held.deadline ? 'expiring' : 'held';
    return { ...held, status, decision };
  }

  async decisionOf(holdJobId: string): Promise<ApprovalRecord | null> {
    const raw = await this.redis.get(this.decisionKey(holdJobId));
    return raw ? (JSON.parse(raw) as ApprovalRecord) : null;
  }

  /**
   * Approves or rejects a held job. Exactly one decision per job wins; a later one, or one on a
   * job that expired, is unknown, or changed since the approver saw it, throws (ApprovalConflictError,
   * ApprovalExpiredError, ApprovalNotFoundError, ApprovalStaleError) and changes nothing.
   */
  async decide(
    holdJobId: string,
    input: ApprovalDecisionInput,
    context: DecisionContext = {},
  ): Promise<ApprovalRecord> {
    const parsed = ApprovalDecisionInput.safeParse(input);
    if (!parsed.success) throw new InvalidRequestError(`invalid decision:\n${z.prettifyError(parsed.error)}`);
    const d = parsed.data;
    const job = await Job.fromId(this.queue, holdJobId);
    const held = job && this.toHeld(job);
    if (!job || !held) throw new ApprovalNotFoundError(`no held job ${holdJobId}`);
    await this.assertStillHeld(job, held);
    const expect = context.expect ?? {};
    if (expect.codeSha256 !== undefined && expect.codeSha256 !== held.codeSha256) {
      throw new ApprovalStaleError(
        `the code of ${holdJobId} is not the code you were shown (sha256 ${held.codeSha256}); show it again`,
      );
    }
    if (expect.analysisSha256 !== undefined && expect.analysisSha256 !== held.analysisSha256) {
      throw new ApprovalStaleError(`the analysis of ${holdJobId} is not the one you were shown; show it again`);
    }
    const record: ApprovalRecord = {
      holdJobId,
      decision: d.decision,
      approver: d.approver,
      decidedAt: Date.now(),
      codeSha256: held.codeSha256,
      analysisSha256: held.analysisSha256,
      mode: held.mode,
      ...(d.decision === 'rejected' ? { reason: d.reason } : {}),
      ...(d.decision === 'approved' && d.payload ? { payload: d.payload } : {}),
    };
    if (!(await this.record(record, held.requestId, d.source, context.address))) {
      throw this.conflict(holdJobId, await this.decisionOf(holdJobId));
    }
    this.observe(record, held.heldAt);
    try {
      await job.promote();
    } catch {
      // No longer delayed: the hold worker already has it and will read this decision.
    }
    return record;
  }

  /**
   * Called by the approval-hold worker when it gets a job: records `expired` unless a person
   * decided first, and returns the decision that stands.
   */
  async settle(held: {
    holdJobId: string;
    requestId: string;
    codeSha256: string;
    analysisSha256: string;
    mode: 'read_only' | 'write_access';
    heldAt: number;
  }): Promise<ApprovalRecord> {
    const record: ApprovalRecord = {
      holdJobId: held.holdJobId,
      decision: 'expired',
      approver: 'system:deadline',
      decidedAt: Date.now(),
      codeSha256: held.codeSha256,
      analysisSha256: held.analysisSha256,
      mode: held.mode,
      reason: 'no decision before the deadline',
    };
    if (await this.record(record, held.requestId, 'deadline')) {
      this.observe(record, held.heldAt);
      return record;
    }
    const existing = await this.decisionOf(held.holdJobId);
    if (!existing) throw new Error(`decision for ${held.holdJobId} vanished`);
    return existing;
  }

  /** The newest `count` entries of the audit trail, oldest first. */
  async auditLog(count = 1000): Promise<AuditEntry[]> {
    const entries = (await this.redis.xrevrange(this.auditKey, '+', '-', 'COUNT', count)) as [string, string[]][];
    return entries.reverse().map(([id, fields]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      return {
        id,
        ...(JSON.parse(f['record'] ?? '{}') as ApprovalRecord),
        requestId: f['requestId'] ?? '',
        ...(f['source'] ? { source: f['source'] } : {}),
        ...(f['address'] ? { address: f['address'] } : {}),
      };
    });
  }

  /** Sets `pyexec_approval_held_jobs` to the number of jobs waiting for a person (call at scrape time). */
  async refreshHeldGauge(): Promise<number> {
    const n = (await this.listHeld()).length;
    this.options.metrics?.approvalHeldJobs.set(n);
    return n;
  }

  /** Refuses a decision on a job that is no longer waiting: decided, expired, or taken by the worker. */
  private async assertStillHeld(job: Job, held: HeldJob): Promise<void> {
    const existing = await this.decisionOf(held.holdJobId);
    if (existing) throw this.conflict(held.holdJobId, existing);
    if (Date.now() > held.deadline) {
      throw new ApprovalExpiredError(`job ${held.holdJobId} expired at ${new Date(held.deadline).toISOString()}`);
    }
    const state = await job.getState();
    if (!(HELD_STATES as readonly string[]).includes(state)) {
      throw new ApprovalConflictError(`job ${held.holdJobId} is no longer held (${state})`);
    }
  }

  private conflict(holdJobId: string, existing: ApprovalRecord | null): ApprovalConflictError {
    if (existing?.decision === 'expired') {
      return new ApprovalExpiredError(
        `job ${holdJobId} expired at ${new Date(existing.decidedAt).toISOString()} with no decision`,
      );
    }
    return new ApprovalConflictError(
      `job ${holdJobId} was already ${existing?.decision ?? 'decided'} by ${existing?.approver ?? 'someone else'}`,
    );
  }

  /** Writes the decision if none exists yet, with its audit entry; false when another one won. */
  private async record(record: ApprovalRecord, requestId: string, source?: string, address?: string): Promise<boolean> {
    const fields = ['record', JSON.stringify(record), 'requestId', requestId];
    if (source) fields.push('source', source);
    if (address) fields.push('address', address);
    const id = await this.redis.eval(
      DECIDE_SCRIPT,
      2,
      this.decisionKey(record.holdJobId),
      this.auditKey,
      JSON.stringify(record),
      String(this.options.retentionSeconds),
      ...fields,
    );
    return id !== null;
  }

  private observe(record: ApprovalRecord, heldAt: number): void {
    this.options.metrics?.approvalDecisions.inc({ decision: record.decision });
    this.options.metrics?.approvalDecisionSeconds.observe(
      { decision: record.decision },
      Math.max(0, record.decidedAt - heldAt) / 1000,
    );
  }

  private toHeld(job: Job): HeldJob | null {
    const parsed = ApprovalJob.safeParse(job.data);
    if (!parsed.success || !job.id) return null;
    const d = parsed.data;
    return {
      holdJobId: job.id,
      requestId: d.requestId,
      threadId: d.threadId,
      userQuery: d.request.user_query,
      taskObjective: d.request.task_objective,
      request: d.request,
      code: d.code,
      codeSha256: d.codeSha256,
      analysis: d.analysis,
      analysisSha256: d.analysis.reportSha256,
      mode: d.analysis.mode,
      risk: d.analysis.risk,
      deadline: d.deadline,
      heldAt: d.enqueuedAt,
      attempt: d.attempt,
    };
  }
}
