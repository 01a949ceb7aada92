import { Job, type Queue } from 'bullmq';
import { z } from 'zod';
import { ApprovalConflictError, ApprovalExpiredError, ApprovalNotFoundError, InvalidRequestError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { ExecutionMode } from '../modes.js';
import { ApprovalDecisionInput, ApprovalJob } from '../queues/approval.js';
import type { ApprovalRecord } from '../queues/envelope.js';
import type { PythonExecutionResponse } from '../queues/result.js';
import type { RedisConnection as Redis } from '../redis/connection.js';
import type { PythonExecutionRequest } from '../request.js';
import { type RequestStatus, RequestStore } from '../store/request-store.js';
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
  readonly mode: ExecutionMode;
  readonly risk: string;
  readonly deadline: number;
  readonly heldAt: number;
  /** When the producer submitted the request. */
  readonly submittedAt: number;
  /** Who asked, as the producer said (`session_context.user_id`, `user` or `username`); null when not said. */
  readonly requester: string | null;
  readonly attempt: number;
}

/**
 * Where a hold job stands: waiting for a person, past its deadline but not yet settled, or with an
 * outcome (a person's decision, the deadline's `expired`, or `cancelled` by the producer).
 */
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
  /** The request's thread id and task objective (entries written before they were recorded have none). */
  readonly threadId?: string;
  readonly task?: string;
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

/** How a request went, for the approver who decided it: its state, its events, and how it ended. */
export interface RequestOutcome {
  readonly requestId: string;
  readonly threadId: string;
  readonly status: RequestStatus;
  readonly submittedAt: number;
  readonly updatedAt: number;
  /** The request's events, oldest first (at most the last 200). */
  readonly events: ReadonlyArray<{
    readonly at: number;
    readonly type: string;
    readonly status?: string;
    readonly data?: Record<string, unknown>;
  }>;
  /** How it ended; null while it runs. `results` is cut to about 20 kB (then `resultsTruncated`). */
  readonly response: {
    readonly status: string;
    readonly reason: string | null;
    readonly results: unknown;
    readonly resultsTruncated: boolean;
    readonly stdout: string;
    readonly executionSeconds: number | null;
    readonly mode: string | null;
    readonly notebookPath: string | null;
    readonly figureCount: number;
    readonly lastError: string | null;
  } | null;
}

/** Filters of the audit trail (all optional; entries must match every one given). */
export interface AuditFilter {
  /** Outcomes to keep, e.g. ['approved', 'rejected']. */
  readonly decisions?: readonly ApprovalRecord['decision'][];
  readonly approver?: string;
  /** Matches a request id, thread id, hold job id or task (case-insensitive substring). */
  readonly text?: string;
  /** Decided at or after / before (ms since the epoch). */
  readonly since?: number;
  readonly until?: number;
  /** The newest `limit` matching entries. @defaultValue 200 */
  readonly limit?: number;
}

/** States in which a hold job is still waiting: a decision promotes it out of them. */
const HELD_STATES = ['delayed', 'waiting', 'prioritized'] as const;
/** How far back `auditLog` with filters looks (stream entries, newest first). */
const AUDIT_SCAN = 10_000;

/**
 * Records an outcome and appends it to the audit stream in one step: SET NX on the job's decision
 * key is the arbiter, and the audit entry is written only by the winner, so the audit trail holds
 * exactly the outcomes that stand, even when the process dies mid-way. A person's decision
 * (ARGV[3] = '1') is also refused when the request was cancelled by its producer or has already
 * ended (KEYS[3], the request's hash): a cancel and an approval racing have one order, here, and
 * a refused decision leaves no trace. The answer: the audit entry id; false when another outcome
 * won; '!cancelled' or '!ended:<status>' when the request refused it.
 */
const DECIDE_SCRIPT = `
if ARGV[3] == '1' then
  if redis.call('HGET', KEYS[3], 'cancel') == '1' then return '!cancelled' end
  local ended = redis.call('HGET', KEYS[3], 'terminal')
  if ended then return '!ended:' .. ended end
end
if not redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]), 'NX') then return false end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))`;

/**
 * Approval decisions. One Redis key per held job is the arbiter (SET NX): the first outcome
 * wins, whether a person's decision, the deadline's `expired` or the producer's `cancelled`, and
 * every later one is a conflict. Each outcome is appended to the audit stream (who, when, which
 * code hash, which payload, from where) and the held (delayed) job is promoted so the
 * approval-hold worker routes it at once.
 */
export class ApprovalService {
  private readonly requests: RequestStore;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly queue: Queue,
    private readonly options: ApprovalServiceOptions = { retentionSeconds: 604_800 },
  ) {
    this.requests = new RequestStore(redis, prefix);
  }

  decisionKey(holdJobId: string): string {
    return `${this.prefix}:approval:${holdJobId}`;
  }
  get auditKey(): string {
    return `${this.prefix}:audit`;
  }

  /**
   * Jobs waiting for a person, oldest deadline first: no outcome yet, deadline not passed, and the
   * request neither cancelled by its producer nor ended (such a job leaves the list at once, even
   * before its `cancelled` outcome is recorded).
   */
  async listHeld(): Promise<HeldJob[]> {
    const jobs = await this.queue.getJobs([...HELD_STATES], 0, 999, true);
    const candidates = jobs.map((job) => this.toHeld(job)).filter((h): h is HeldJob => h !== null);
    if (candidates.length === 0) return [];
    const decided = await this.redis.mget(candidates.map((h) => this.decisionKey(h.holdJobId)));
    const gone = await this.requestsGone(candidates.map((h) => h.requestId));
    const now = Date.now();
    return candidates
      .filter((h, i) => decided[i] === null && !gone[i] && h.deadline > now)
      .sort((a, b) => a.deadline - b.deadline);
  }

  /**
   * A hold job, held or with its outcome, named by its hold job id, its request id or its thread
   * id (a request's latest hold). Throws ApprovalNotFoundError when none of them names one.
   */
  async show(id: string): Promise<HeldJobDetail> {
    const holdJobId = await this.resolve(id);
    const job = await Job.fromId(this.queue, holdJobId);
    const held = job && this.toHeld(job);
    if (!held) throw new ApprovalNotFoundError(`no held job ${id}`);
    const decision = await this.decisionOf(holdJobId);
    const [gone] = await this.requestsGone([held.requestId]);
    const status: HoldStatus = decision
      ? decision.decision
      : gone
        ? 'cancelled'
        : Date.now() > held.deadline
          ? 'expiring'
          : 'held';
    return { ...held, status, decision };
  }

  /**
   * The hold job id an approver's id names: a hold job id as it is; a request id (or a thread id,
   * through its request) names the request's current hold, else its latest one. Throws
   * ApprovalNotFoundError when the id names nothing held.
   */
  async resolve(id: string): Promise<string> {
    if (await Job.fromId(this.queue, id)) return id;
    const requestId = (await this.requests.get(id)) ? id : await this.redis.get(this.requests.threadKey(id));
    const snap = requestId ? await this.requests.get(requestId) : null;
    if (!snap) throw new ApprovalNotFoundError(`no held job, request or thread ${id}`);
    if (snap.hold) return snap.hold.holdJobId;
    // Decided or ended: the latest hold named by the request's events (one per generation attempt).
    const events = (await this.redis.xrevrange(this.requests.eventsKey(snap.requestId), '+', '-', 'COUNT', 1000)) as [
      string,
      string[],
    ][];
    for (const [, fields] of events) {
      const data = fields[fields.indexOf('data') + 1];
      const holdJobId =
        fields.includes('data') && data ? (JSON.parse(data) as { holdJobId?: unknown }).holdJobId : null;
      if (typeof holdJobId === 'string') return holdJobId;
    }
    throw new ApprovalNotFoundError(`request ${snap.requestId} was never held for approval`);
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
    const outcome = await this.record(record, held, { checkRequest: true, source: d.source, address: context.address });
    if (outcome === 'lost') throw this.conflict(holdJobId, await this.decisionOf(holdJobId));
    if (outcome !== 'won') throw this.requestRefused(held, outcome);
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
    threadId?: string;
    taskObjective?: string;
    codeSha256: string;
    analysisSha256: string;
    mode: ExecutionMode;
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
    if ((await this.record(record, held, { source: 'deadline' })) === 'won') {
      this.observe(record, held.heldAt);
      return record;
    }
    const existing = await this.decisionOf(held.holdJobId);
    if (!existing) throw new Error(`decision for ${held.holdJobId} vanished`);
    return existing;
  }

  /**
   * Records that the producer cancelled a held request: the hold's outcome becomes `cancelled`
   * (unless one stands already), it is audited as such (not as anyone's decision), and the job is
   * promoted so the hold worker ends the request now rather than at its deadline. Returns the
   * outcome that stands, or null when the request has no hold. Idempotent: every process that
   * hears of the cancel may call it.
   */
  async withdraw(requestId: string): Promise<ApprovalRecord | null> {
    const snap = await this.requests.get(requestId);
    if (!snap?.hold || !snap.cancelRequested) return null;
    const job = await Job.fromId(this.queue, snap.hold.holdJobId);
    const held = job && this.toHeld(job);
    if (!job || !held) return null;
    const record: ApprovalRecord = {
      holdJobId: held.holdJobId,
      decision: 'cancelled',
      approver: 'system:producer',
      decidedAt: Date.now(),
      codeSha256: held.codeSha256,
      analysisSha256: held.analysisSha256,
      mode: held.mode,
      reason: 'cancelled by the producer while held',
    };
    const outcome = await this.record(record, held, { source: 'producer' });
    if (outcome === 'won') this.observe(record, held.heldAt);
    try {
      await job.promote();
    } catch {
      // Not delayed any more: the hold worker has it, and ends it as cancelled.
    }
    return outcome === 'won' ? record : this.decisionOf(held.holdJobId);
  }

  /** How the request went (see RequestOutcome); throws ApprovalNotFoundError for an unknown request. */
  async outcome(requestId: string): Promise<RequestOutcome> {
    const snap = await this.requests.get(requestId);
    if (!snap) throw new ApprovalNotFoundError(`no request ${requestId}`);
    const raw = (await this.redis.xrevrange(this.requests.eventsKey(requestId), '+', '-', 'COUNT', 200)) as [
      string,
      string[],
    ][];
    const events = raw.reverse().map(([, fields]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      return {
        at: Number(f['at']),
        type: f['type'] ?? 'unknown',
        ...(f['status'] ? { status: f['status'] } : {}),
        ...(f['data'] ? { data: JSON.parse(f['data']) as Record<string, unknown> } : {}),
      };
    });
    const r = snap.response as Partial<PythonExecutionResponse> | undefined;
    const resultsText = r ? (JSON.stringify(r.results ?? null) ?? 'null') : '';
    const truncated = resultsText.length > 20_000;
    return {
      requestId,
      threadId: snap.threadId,
      status: snap.status,
      submittedAt: snap.submittedAt,
      updatedAt: snap.updatedAt,
      events,
      response: r
        ? {
            status: String(r.status ?? snap.status),
            reason: r.reason ?? null,
            results: truncated ? `${resultsText.slice(0, 20_000)}…` : (r.results ?? null),
            resultsTruncated: truncated,
            stdout: (r.execution_stdout ?? '').slice(-4000),
            executionSeconds: r.execution_time_seconds ?? null,
            mode: r.execution_mode ?? null,
            notebookPath: r.notebook_path ?? null,
            figureCount: r.figure_count ?? 0,
            lastError: r.error_chain?.at(-1)?.message ?? null,
          }
        : null,
    };
  }

  /** The newest entries of the audit trail that match `filter`, oldest first. */
  async auditLog(filter: AuditFilter | number = {}): Promise<AuditEntry[]> {
    const f = typeof filter === 'number' ? { limit: filter } : filter;
    const limit = f.limit ?? 200;
    const filtered = Boolean(f.decisions?.length || f.approver || f.text || f.since || f.until);
    const max = f.until ? String(f.until) : '+';
    const min = f.since ? String(f.since) : '-';
    const raw = (await this.redis.xrevrange(this.auditKey, max, min, 'COUNT', filtered ? AUDIT_SCAN : limit)) as [
      string,
      string[],
    ][];
    const text = f.text?.toLowerCase();
    const out: AuditEntry[] = [];
    for (const [id, fields] of raw) {
      const e = auditEntry(id, fields);
      if (f.decisions?.length && !f.decisions.includes(e.decision)) continue;
      if (f.approver && e.approver !== f.approver) continue;
      if (text && ![e.requestId, e.holdJobId, e.threadId, e.task].some((v) => v?.toLowerCase().includes(text)))
        continue;
      out.push(e);
      if (out.length >= limit) break;
    }
    return out.reverse();
  }

  /** Sets `pyexec_approval_held_jobs` to the number of jobs waiting for a person (call at scrape time). */
  async refreshHeldGauge(): Promise<number> {
    const n = (await this.listHeld()).length;
    this.options.metrics?.approvalHeldJobs.set(n);
    return n;
  }

  /** Per request: cancelled by its producer, or ended (true), else false. */
  private async requestsGone(requestIds: readonly string[]): Promise<boolean[]> {
    const pipeline = this.redis.pipeline();
    for (const id of requestIds) pipeline.hmget(this.requests.key(id), 'cancel', 'terminal');
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      const [cancel, terminal] = value as [string | null, string | null];
      return cancel === '1' || terminal !== null;
    });
  }

  private requestRefused(held: HeldJob, outcome: string): ApprovalConflictError {
    return new ApprovalConflictError(
      outcome === '!cancelled'
        ? `request ${held.requestId} was cancelled by its producer; there is nothing to decide`
        : `request ${held.requestId} has already ended (${outcome.slice('!ended:'.length)}); there is nothing to decide`,
    );
  }

  /** Refuses a decision on a job that is no longer waiting: decided, expired, cancelled, or taken by the worker. */
  private async assertStillHeld(job: Job, held: HeldJob): Promise<void> {
    const existing = await this.decisionOf(held.holdJobId);
    if (existing) throw this.conflict(held.holdJobId, existing);
    const snap = await this.requests.get(held.requestId);
    if (snap?.cancelRequested) throw this.requestRefused(held, '!cancelled');
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
    if (existing?.decision === 'cancelled') {
      return new ApprovalConflictError(`job ${holdJobId} was cancelled by its producer; there is nothing to decide`);
    }
    return new ApprovalConflictError(
      `job ${holdJobId} was already ${existing?.decision ?? 'decided'} by ${existing?.approver ?? 'someone else'}`,
    );
  }

  /**
   * Writes the outcome if none exists yet, with its audit entry. `won`; `lost` when another outcome
   * stands; with `checkRequest`, `!cancelled` / `!ended:<status>` when the request refuses it.
   */
  private async record(
    record: ApprovalRecord,
    held: { requestId: string; threadId?: string; taskObjective?: string },
    how: { checkRequest?: boolean; source?: string | undefined; address?: string | undefined },
  ): Promise<string> {
    const fields = ['record', JSON.stringify(record), 'requestId', held.requestId];
    if (held.threadId) fields.push('threadId', held.threadId);
    if (held.taskObjective) fields.push('task', held.taskObjective.slice(0, 300));
    if (how.source) fields.push('source', how.source);
    if (how.address) fields.push('address', how.address);
    const id = (await this.redis.eval(
      DECIDE_SCRIPT,
      3,
      this.decisionKey(record.holdJobId),
      this.auditKey,
      this.requests.key(held.requestId),
      JSON.stringify(record),
      String(this.options.retentionSeconds),
      how.checkRequest ? '1' : '0',
      ...fields,
    )) as string | null;
    if (id === null) return 'lost';
    return id.startsWith('!') ? id : 'won';
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
      submittedAt: d.submittedAt,
      requester: requesterOf(d.request),
      attempt: d.attempt,
    };
  }
}

/** Who asked: Osprey's `session_context` carries the user (`user_id`, else `user` / `username`). */
function requesterOf(request: PythonExecutionRequest): string | null {
  const ctx = request.session_context ?? {};
  for (const key of ['user_id', 'user', 'username']) {
    const v = ctx[key];
    if ((typeof v === 'string' && v.trim()) || typeof v === 'number') return String(v).slice(0, 200);
  }
  return null;
}

function auditEntry(id: string, fields: string[]): AuditEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return {
    id,
    ...(JSON.parse(f['record'] ?? '{}') as ApprovalRecord),
    requestId: f['requestId'] ?? '',
    ...(f['threadId'] ? { threadId: f['threadId'] } : {}),
    ...(f['task'] ? { task: f['task'] } : {}),
    ...(f['source'] ? { source: f['source'] } : {}),
    ...(f['address'] ? { address: f['address'] } : {}),
  };
}
