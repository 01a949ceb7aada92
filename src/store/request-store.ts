import type { Redis } from 'ioredis';

/**
 * The per-request record in Redis, where producers read a request's progress and response. Every
 * write that two processes could race on, or that a crash could cut in half, is one Lua script.
 *
 *   <prefix>:request:<requestId>   HASH  requestId, threadId, digest (sha256 of the request's
 *                                        canonical JSON), request (JSON), status, submittedAt,
 *                                        updatedAt, cancel ('1'), hold (JSON), terminal, response (JSON)
 *   <prefix>:events:<requestId>    STREAM  submitted, status, approved, cancel_requested, finished
 *                                        (MAXLEN ~1000); read from the start by waiters
 *   <prefix>:thread:<threadId>     STR   the latest request submitted on the thread
 *
 * All three expire after the retention (`pyexec.retention.finished_seconds`), counted from the
 * submit and again from the end.
 *
 * States: `queued` → `generating` | `analyzing` | `awaiting_approval` | `executing` | `finishing`
 * (in any order, any number of times) → one terminal state (`succeeded`, `failed`, `rejected`,
 * `expired`, `cancelled`). SUBMIT creates the record, its first event and the thread pointer at
 * once. STATUS moves a request that has no `terminal`. END writes `terminal`, `status`, `response`
 * and the `finished` event in one step, and does nothing when a response is there already: a
 * re-delivered result job ends nothing twice. A record whose `terminal` is set but whose response
 * is missing (left half-done by a version that wrote them in two steps) is completed by END.
 */
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

/** What END did: wrote the end, found it already written, or found no record to end. */
export type EndResult = 'recorded' | 'already_ended' | 'missing';

const SUBMIT = `
local cur = redis.call('GET', KEYS[1])
if cur then
  if redis.call('HGET', ARGV[1] .. ':request:' .. cur, 'digest') == ARGV[4] then return {cur, 0} end
end
redis.call('HSET', KEYS[2], 'requestId', ARGV[2], 'threadId', ARGV[3], 'digest', ARGV[4], 'request', ARGV[5],
  'status', 'queued', 'submittedAt', ARGV[6], 'updatedAt', ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', '1000', '*', 'type', 'submitted', 'at', ARGV[6], 'status', 'queued')
redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[7])
return {ARGV[2], 1}`;

const STATUS = `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'terminal') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updatedAt', ARGV[2])
if ARGV[3] == '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*', 'type', 'status', 'at', ARGV[2], 'status', ARGV[1])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*', 'type', 'status', 'at', ARGV[2], 'status', ARGV[1], 'data', ARGV[3])
end
return 1`;

const HOLD = `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'terminal') == 1 then return 0 end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'hold') else redis.call('HSET', KEYS[1], 'hold', ARGV[1]) end
return 1`;

const END = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('HEXISTS', KEYS[1], 'response') == 1 then return 'already_ended' end
redis.call('HSET', KEYS[1], 'terminal', ARGV[1], 'status', ARGV[1], 'updatedAt', ARGV[3], 'response', ARGV[2])
redis.call('HDEL', KEYS[1], 'hold')
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*', 'type', 'finished', 'at', ARGV[3], 'status', ARGV[1],
  'data', ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 'recorded'`;

type Scripts = {
  pyexecSubmit(
    thread: string,
    request: string,
    events: string,
    prefix: string,
    requestId: string,
    threadId: string,
    digest: string,
    json: string,
    now: number,
    ttl: number,
  ): Promise<[string, number]>;
  pyexecStatus(request: string, events: string, status: string, now: number, data: string): Promise<number>;
  pyexecHold(request: string, hold: string): Promise<number>;
  pyexecEnd(
    request: string,
    events: string,
    status: string,
    response: string,
    now: number,
    ttl: number,
    data: string,
  ): Promise<EndResult>;
};

function withScripts(redis: Redis): Redis & Scripts {
  const r = redis as Redis & Partial<Scripts>;
  if (!r.pyexecEnd) {
    redis.defineCommand('pyexecSubmit', { numberOfKeys: 3, lua: SUBMIT });
    redis.defineCommand('pyexecStatus', { numberOfKeys: 2, lua: STATUS });
    redis.defineCommand('pyexecHold', { numberOfKeys: 1, lua: HOLD });
    redis.defineCommand('pyexecEnd', { numberOfKeys: 2, lua: END });
  }
  return r as Redis & Scripts;
}

export class RequestStore {
  private readonly redis: Redis & Scripts;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    this.redis = withScripts(redis);
  }

  key(requestId: string): string {
    return `${this.prefix}:request:${requestId}`;
  }
  eventsKey(requestId: string): string {
    return `${this.prefix}:events:${requestId}`;
  }
  threadKey(threadId: string): string {
    return `${this.prefix}:thread:${threadId}`;
  }

  /**
   * Records a submitted request, unless the thread's latest request is this same request (same
   * digest): then that one is returned with `created: false`. A different request on a used thread
   * is recorded as new, and the thread then names it. `requestJson` is the request as validated
   * and serialised by the caller: nothing here can fail half-way.
   */
  async submit(input: {
    requestId: string;
    threadId: string;
    digest: string;
    requestJson: string;
    ttlSeconds: number;
  }): Promise<{ requestId: string; created: boolean }> {
    const [requestId, created] = await this.redis.pyexecSubmit(
      this.threadKey(input.threadId),
      this.key(input.requestId),
      this.eventsKey(input.requestId),
      this.prefix,
      input.requestId,
      input.threadId,
      input.digest,
      input.requestJson,
      Date.now(),
      input.ttlSeconds,
    );
    return { requestId, created: created === 1 };
  }

  /** Moves a request to a non-terminal status and records an event; ignored once the request has ended. */
  async setStatus(requestId: string, status: RequestStatus, data?: Record<string, unknown>): Promise<void> {
    await this.redis.pyexecStatus(
      this.key(requestId),
      this.eventsKey(requestId),
      status,
      Date.now(),
      data ? JSON.stringify(data) : '',
    );
  }

  async setHold(requestId: string, hold: { holdJobId: string; deadline: number } | null): Promise<void> {
    await this.redis.pyexecHold(this.key(requestId), hold ? JSON.stringify(hold) : '');
  }

  /**
   * Ends the request: terminal state, response and `finished` event in one step. Returns
   * `already_ended` (and changes nothing) when a response is recorded already, `missing` when
   * there is no record (never submitted, or past its retention).
   */
  async end(requestId: string, status: RequestStatus, response: unknown, ttlSeconds: number): Promise<EndResult> {
    return this.redis.pyexecEnd(
      this.key(requestId),
      this.eventsKey(requestId),
      status,
      JSON.stringify(response),
      Date.now(),
      ttlSeconds,
      JSON.stringify({ status }),
    );
  }

  /** True once the request's response is recorded (nothing about it changes any more). */
  async hasEnded(requestId: string): Promise<boolean> {
    return (await this.redis.hexists(this.key(requestId), 'response')) === 1;
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
