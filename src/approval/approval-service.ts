import { Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ApprovalConflictError, ApprovalExpiredError, ApprovalNotFoundError, InvalidRequestError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import { ApprovalDecisionInput, ApprovalJob } from '../queues/approval.js';
import type { ApprovalRecord } from '../queues/envelope.js';

/** What an approver is shown about a held job. */
export interface HeldJob {
  readonly holdJobId: string;
  readonly requestId: string;
  readonly threadId: string;
  readonly userQuery: string;
  readonly taskObjective: string;
  readonly code: string;
  readonly codeSha256: string;
  readonly analysis: ApprovalJob['analysis'];
  readonly mode: 'read_only' | 'write_access';
  readonly risk: string;
  readonly deadline: number;
  readonly heldAt: number;
  readonly attempt: number;
}

export interface AuditEntry extends ApprovalRecord {
  readonly id: string;
  readonly requestId: string;
  readonly source?: string;
}

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
    private readonly options: { retentionSeconds: number; metrics?: Metrics } = { retentionSeconds: 604_800 },
  ) {}

  decisionKey(holdJobId: string): string {
    return `${this.prefix}:approval:${holdJobId}`;
  }
  get auditKey(): string {
    return `${this.prefix}:audit`;
  }

  /** Held jobs, oldest deadline first. */
  async listHeld(): Promise<HeldJob[]> {
    const jobs = await this.queue.getJobs(['delayed', 'waiting'], 0, 999, true);
    const held: HeldJob[] = [];
    for (const job of jobs) {
      const h = this.toHeld(job);
      if (h && !(await this.redis.exists(this.decisionKey(h.holdJobId)))) held.push(h);
    }
    return held.sort((a, b) => a.deadline - b.deadline);
  }

  async show(holdJobId: string): Promise<HeldJob & { decision: ApprovalRecord | null }> {
    const job = await Job.fromId(this.queue, holdJobId);
    const held = job && this.toHeld(job);
    if (!held) throw new ApprovalNotFoundError(`no held job ${holdJobId}`);
    return { ...held, decision: await this.decisionOf(holdJobId) };
  }

  async decisionOf(holdJobId: string): Promise<ApprovalRecord | null> {
    const raw = await this.redis.get(this.decisionKey(holdJobId));
    return raw ? (JSON.parse(raw) as ApprovalRecord) : null;
  }

  /** Approves or rejects a held job. Exactly one decision per job wins; the rest get a conflict. */
  async decide(holdJobId: string, input: ApprovalDecisionInput): Promise<ApprovalRecord> {
    const parsed = ApprovalDecisionInput.safeParse(input);
    if (!parsed.success) throw new InvalidRequestError(`invalid decision:\n${z.prettifyError(parsed.error)}`);
    const d = parsed.data;
    const job = await Job.fromId(this.queue, holdJobId);
    const held = job && this.toHeld(job);
    if (!job || !held) throw new ApprovalNotFoundError(`no held job ${holdJobId}`);
    const existing = await this.decisionOf(holdJobId);
    if (existing) throw new ApprovalConflictError(`job ${holdJobId} was already ${existing.decision} by ${existing.approver}`);
    if (Date.now() > held.deadline) throw new ApprovalExpiredError(`job ${holdJobId} expired at ${new Date(held.deadline).toISOString()}`);
    const record: ApprovalRecord = {
      holdJobId,
      decision: d.decision,
      approver: d.approver,
      decidedAt: Date.now(),
      codeSha256: held.codeSha256,
      analysisSha256: held.analysis.reportSha256,
      mode: held.mode,
      ...(d.decision === 'rejected' ? { reason: d.reason } : {}),
      ...(d.decision === 'approved' && d.payload ? { payload: d.payload } : {}),
    };
    const won = await this.redis.set(this.decisionKey(holdJobId), JSON.stringify(record), 'EX', this.options.retentionSeconds, 'NX');
    if (won !== 'OK') {
      const other = await this.decisionOf(holdJobId);
      throw new ApprovalConflictError(`job ${holdJobId} was already ${other?.decision ?? 'decided'} by ${other?.approver ?? 'someone else'}`);
    }
    await this.audit(record, held.requestId, d.source);
    this.options.metrics?.approvalDecisions.inc({ decision: record.decision });
    this.options.metrics?.approvalDecisionSeconds.observe({ decision: record.decision }, (record.decidedAt - held.heldAt) / 1000);
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
  async settle(held: { holdJobId: string; requestId: string; codeSha256: string; analysisSha256: string; mode: 'read_only' | 'write_access'; heldAt: number }): Promise<ApprovalRecord> {
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
    const won = await this.redis.set(this.decisionKey(held.holdJobId), JSON.stringify(record), 'EX', this.options.retentionSeconds, 'NX');
    if (won === 'OK') {
      await this.audit(record, held.requestId, 'deadline');
      this.options.metrics?.approvalDecisions.inc({ decision: 'expired' });
      this.options.metrics?.approvalDecisionSeconds.observe({ decision: 'expired' }, (record.decidedAt - held.heldAt) / 1000);
      return record;
    }
    const existing = await this.decisionOf(held.holdJobId);
    if (!existing) throw new Error(`decision for ${held.holdJobId} vanished`);
    return existing;
  }

  /** The audit trail, oldest first. */
  async auditLog(count = 1000): Promise<AuditEntry[]> {
    const entries = (await this.redis.xrange(this.auditKey, '-', '+', 'COUNT', count)) as [string, string[]][];
    return entries.map(([id, fields]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      return { id, ...(JSON.parse(f['record'] ?? '{}') as ApprovalRecord), requestId: f['requestId'] ?? '', ...(f['source'] ? { source: f['source'] } : {}) };
    });
  }

  private async audit(record: ApprovalRecord, requestId: string, source?: string): Promise<void> {
    const fields = ['record', JSON.stringify(record), 'requestId', requestId];
    if (source) fields.push('source', source);
    await this.redis.xadd(this.auditKey, '*', ...fields);
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
      code: d.code,
      codeSha256: d.codeSha256,
      analysis: d.analysis,
      mode: d.analysis.mode,
      risk: d.analysis.risk,
      deadline: d.deadline,
      heldAt: d.enqueuedAt,
      attempt: d.attempt,
    };
  }
}
