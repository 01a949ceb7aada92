import type { Redis } from 'ioredis';

/** Where a request is, as the producer sees it. Terminal states are final. */
export type RequestStatus =
  | 'queued'
  | 'generating'
  | 'analyzing'
  | 'awaiting_approval'
  | 'executing'
  | 'finishing'
  | 'succeeded'
  | 'failed'
  | 'rejected'
  | 'expired'
  | 'cancelled';

export const TERMINAL: readonly RequestStatus[] = ['succeeded', 'failed', 'rejected', 'expired', 'cancelled'];

export interface RequestEvent {
  readonly id: string;
  readonly type: string;
  readonly status?: RequestStatus;
  readonly at: number;
  readonly data?: Record<string, unknown>;
}

export interface RequestSnapshot {
  readonly requestId: string;
  readonly threadId: string;
  readonly status: RequestStatus;
  readonly submittedAt: number;
  readonly updatedAt: number;
  readonly cancelRequested: boolean;
  readonly hold?: { holdJobId: string; deadline: number };
  readonly response?: unknown;
}

/**
 * The per-request record in Redis: a hash (status, response, cancel flag, hold) and an event
 * stream the producer reads from the start, so a waiter that starts late or restarts misses
 * nothing. `terminal` is set once with HSETNX: every request ends in exactly one terminal state.
 */
export class RequestStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  key(requestId: string): string {
    return `${this.prefix}:request:${requestId}`;
  }
  eventsKey(requestId: string): string {
    return `${this.prefix}:events:${requestId}`;
  }
  threadKey(threadId: string): string {
    return `${this.prefix}:thread:${threadId}`;
  }

  /** Claims a thread id for a new request; returns the request id that owns the thread. */
  async claimThread(
    threadId: string,
    requestId: string,
    ttlSeconds: number,
  ): Promise<{ requestId: string; created: boolean }> {
    const ok = await this.redis.set(this.threadKey(threadId), requestId, 'EX', ttlSeconds, 'NX');
    if (ok === 'OK') return { requestId, created: true };
    const owner = await this.redis.get(this.threadKey(threadId));
    if (owner) return { requestId: owner, created: false };
    // The thread key expired between the two commands; try once more.
    return this.claimThread(threadId, requestId, ttlSeconds);
  }

  async create(requestId: string, threadId: string, request: unknown, ttlSeconds: number): Promise<void> {
    const now = Date.now();
    await this.redis
      .multi()
      .hset(this.key(requestId), {
        requestId,
        threadId,
        status: 'queued',
        submittedAt: String(now),
        updatedAt: String(now),
        request: JSON.stringify(request),
      })
      .expire(this.key(requestId), ttlSeconds)
      .exec();
    await this.event(requestId, 'submitted', 'queued');
  }

  /** Moves a request to a non-terminal status (ignored once terminal) and records an event. */
  async setStatus(requestId: string, status: RequestStatus, data?: Record<string, unknown>): Promise<void> {
    const terminal = await this.redis.hget(this.key(requestId), 'terminal');
    if (terminal) return;
    await this.redis.hset(this.key(requestId), { status, updatedAt: String(Date.now()) });
    await this.event(requestId, `status`, status, data);
  }

  async setHold(requestId: string, hold: { holdJobId: string; deadline: number } | null): Promise<void> {
    if (hold) await this.redis.hset(this.key(requestId), 'hold', JSON.stringify(hold));
    else await this.redis.hdel(this.key(requestId), 'hold');
  }

  /**
   * Records the terminal state and response. Returns false (and changes nothing) when the request
   * already ended: a re-delivered result job cannot end a request twice.
   */
  async finish(requestId: string, status: RequestStatus, response: unknown, ttlSeconds: number): Promise<boolean> {
    const won = await this.redis.hsetnx(this.key(requestId), 'terminal', status);
    if (!won) return false;
    await this.redis
      .multi()
      .hset(this.key(requestId), { status, updatedAt: String(Date.now()), response: JSON.stringify(response) })
      .hdel(this.key(requestId), 'hold')
      .expire(this.key(requestId), ttlSeconds)
      .exec();
    await this.event(requestId, 'finished', status, { status });
    await this.redis.expire(this.eventsKey(requestId), ttlSeconds);
    return true;
  }

  async requestCancel(requestId: string): Promise<boolean> {
    const exists = await this.redis.exists(this.key(requestId));
    if (!exists) return false;
    await this.redis.hset(this.key(requestId), 'cancel', '1');
    await this.event(requestId, 'cancel_requested');
    await this.redis.publish(`${this.prefix}:cancel`, requestId);
    return true;
  }

  async isCancelRequested(requestId: string): Promise<boolean> {
    return (await this.redis.hget(this.key(requestId), 'cancel')) === '1';
  }

  async get(requestId: string): Promise<RequestSnapshot | null> {
    const h = await this.redis.hgetall(this.key(requestId));
    if (!h['requestId']) return null;
    return {
      requestId: h['requestId'],
      threadId: h['threadId'] ?? '',
      status: (h['status'] ?? 'queued') as RequestStatus,
      submittedAt: Number(h['submittedAt']),
      updatedAt: Number(h['updatedAt']),
      cancelRequested: h['cancel'] === '1',
      ...(h['hold'] ? { hold: JSON.parse(h['hold']) } : {}),
      ...(h['response'] ? { response: JSON.parse(h['response']) } : {}),
    };
  }

  async requestOf(requestId: string): Promise<unknown> {
    const raw = await this.redis.hget(this.key(requestId), 'request');
    return raw ? JSON.parse(raw) : null;
  }

  async event(requestId: string, type: string, status?: RequestStatus, data?: Record<string, unknown>): Promise<void> {
    const fields = ['type', type, 'at', String(Date.now())];
    if (status) fields.push('status', status);
    if (data) fields.push('data', JSON.stringify(data));
    await this.redis.xadd(this.eventsKey(requestId), 'MAXLEN', '~', '1000', '*', ...fields);
  }

  /** Reads events after `fromId` ('0' for all), blocking up to `blockMs` (needs a dedicated connection). */
  static async readEvents(redis: Redis, key: string, fromId: string, blockMs: number): Promise<RequestEvent[]> {
    const res = (await redis.xread('COUNT', 100, 'BLOCK', blockMs, 'STREAMS', key, fromId)) as
      | [string, [string, string[]][]][]
      | null;
    if (!res) return [];
    const out: RequestEvent[] = [];
    for (const [, entries] of res) {
      for (const [id, fields] of entries) {
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
        out.push({
          id,
          type: f['type'] ?? 'unknown',
          at: Number(f['at']),
          ...(f['status'] ? { status: f['status'] as RequestStatus } : {}),
          ...(f['data'] ? { data: JSON.parse(f['data']) } : {}),
        });
      }
    }
    return out;
  }
}
