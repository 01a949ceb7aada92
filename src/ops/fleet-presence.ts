import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Stage } from '../queues/envelope.js';
import type { RedisConnection as Redis } from '../redis/connection.js';

/** One worker process as `pyexec status` sees it. */
export interface PresenceEntry {
  /** One per Fleet (a process may embed more than one). */
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** Job slots (worker concurrency) for the stage. */
  readonly slots: number;
  readonly state: string;
  /** How long after a heartbeat the entry stays without another (the process's own setting). */
  readonly ttlMs: number;
  readonly seenAt: number;
  /** Execution workers: how their kernels are confined (describeConfinement). */
  readonly confinement?: string;
}

export interface PresenceTiming {
  /** Time between two heartbeats. @defaultValue 10000 */
  readonly heartbeatMs: number;
  /** A process counts as present until this long after its last heartbeat. @defaultValue 30000 */
  readonly ttlMs: number;
}
export const DEFAULT_PRESENCE: PresenceTiming = { heartbeatMs: 10_000, ttlMs: 30_000 };

const keyOf = (prefix: string, stage: Stage) => `${prefix}:fleet:${stage}`;

/**
 * Each worker process announces itself per stage in a sorted set (member: id, host, pid, slots,
 * state, ttl; score: the time its entry expires, last heartbeat + ttl) from start() until stop().
 * `pyexec status` reads who is there and their capacity without CLIENT LIST, which managed Redis
 * services often disable. A process that dies (no stop()) drops out once its entry expires: each
 * entry carries its own TTL, so readers need not share the writers' settings.
 */
export class FleetPresence {
  private timer: NodeJS.Timeout | undefined;
  private readonly members = new Map<Stage, string>();
  private readonly id = randomUUID().slice(0, 8);

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly slots: Partial<Record<Stage, number>>,
    private readonly state: () => string,
    private readonly timing: PresenceTiming = DEFAULT_PRESENCE,
    /** More facts in the announcement (the confinement in force). */
    private readonly info: () => Record<string, unknown> = () => ({}),
  ) {}

  /** Announces this process now and every `heartbeatMs` until stop(). A lost Redis only skips beats. */
  async start(): Promise<void> {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.beat().catch(() => {}), this.timing.heartbeatMs);
    this.timer.unref();
    await this.refresh();
  }

  private async beat(): Promise<void> {
    if (Object.keys(this.slots).length === 0) return;
    const now = Date.now();
    const multi = this.redis.multi();
    for (const [stage, slots] of Object.entries(this.slots) as [Stage, number][]) {
      const { ttlMs } = this.timing;
      const member = JSON.stringify({
        id: this.id,
        host: hostname(),
        pid: process.pid,
        slots,
        state: this.state(),
        ...this.info(),
        ttlMs,
      });
      const previous = this.members.get(stage);
      if (previous && previous !== member) multi.zrem(keyOf(this.prefix, stage), previous);
      this.members.set(stage, member);
      multi.zadd(keyOf(this.prefix, stage), now + ttlMs, member);
      multi.zremrangebyscore(keyOf(this.prefix, stage), 0, now);
    }
    await multi.exec();
  }

  /** Re-announces at once (a state change such as draining). */
  refresh(): Promise<void> {
    return this.beat().catch(() => {});
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.members.size === 0) return;
    const multi = this.redis.multi();
    for (const [stage, member] of this.members) multi.zrem(keyOf(this.prefix, stage), member);
    await multi.exec();
  }
}

/** The worker processes present for a stage. */
export async function presentWorkers(redis: Redis, prefix: string, stage: Stage): Promise<PresenceEntry[]> {
  const raw = await redis.zrangebyscore(keyOf(prefix, stage), `(${Date.now()}`, '+inf', 'WITHSCORES');
  const out: PresenceEntry[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      const m = JSON.parse(raw[i]!) as Omit<PresenceEntry, 'seenAt'>;
      out.push({ ...m, seenAt: Number(raw[i + 1]) - (Number(m.ttlMs) || 0) });
    } catch {
      // Not ours; ignore.
    }
  }
  return out;
}

/** Stage outcomes counted as failures in `pyexec status` (BullMQ's own final failures are `error`). */
export const FAILURE_OUTCOMES = ['failed', 'needs_review', 'error'] as const;
const OUTCOME_BUCKET_MS = 60_000;
const outcomesKey = (prefix: string, stage: Stage, bucket: number) => `${prefix}:fleet:${stage}:outcomes:${bucket}`;

/** Counts one finished job of a stage by outcome, in a per-minute hash kept for an hour. */
export async function recordOutcome(redis: Redis, prefix: string, stage: Stage, outcome: string): Promise<void> {
  const key = outcomesKey(prefix, stage, Math.floor(Date.now() / OUTCOME_BUCKET_MS));
  await redis.multi().hincrby(key, outcome, 1).expire(key, 3600).exec();
}

/** A stage's outcomes over the last `minutes` minutes, summed across every worker process. */
export async function recentOutcomes(
  redis: Redis,
  prefix: string,
  stage: Stage,
  minutes = 15,
): Promise<Record<string, number>> {
  const now = Math.floor(Date.now() / OUTCOME_BUCKET_MS);
  const multi = redis.multi();
  for (let i = 0; i < minutes; i++) multi.hgetall(outcomesKey(prefix, stage, now - i));
  const totals: Record<string, number> = {};
  for (const [, hash] of (await multi.exec()) ?? []) {
    for (const [k, v] of Object.entries((hash ?? {}) as Record<string, string>))
      totals[k] = (totals[k] ?? 0) + Number(v);
  }
  return totals;
}
