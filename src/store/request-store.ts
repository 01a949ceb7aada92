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
  /** The producer that submitted it through the HTTP API (its token's name); absent otherwise. */
  readonly submittedBy?: string;
}

/** One live-output event for `appendOutput`: its type, the bytes it counts, its data (JSON). `over`:
 * the sender dropped output past the bound itself; the store adds its marker (once). */
export interface OutputEventInput {
  readonly type: 'stdout' | 'stderr' | 'display' | 'over';
  readonly bytes: number;
  readonly data: string;
}

/** What `list` filters on; every filter is optional. */
export interface RequestListFilter {
  readonly statuses?: readonly RequestStatus[];
  readonly threadId?: string;
  /** Submitted at or after (ms since the epoch). */
  readonly since?: number;
  /** Submitted at or before (ms since the epoch). */
  readonly until?: number;
  readonly submittedBy?: string;
  /** @defaultValue 50 */
  readonly limit?: number;
  /** `nextCursor` of the previous page. */
  readonly cursor?: string;
}

/**
 * Appends live output to a request's event stream within the request's budget, atomically (many
 * flushes, attempts and workers share one budget). KEYS: the request hash, its event stream.
 * ARGV: max bytes, max events, now, then (type, bytes, data) per event. The hash keeps the counters
 * (`output_bytes`, `output_events`, `output_dropped`); the first event over budget adds one
 * `output_dropped` marker (`output_capped` remembers it). A request that ended (or expired) gets
 * nothing. Returns {events sent, bytes dropped}, or {-1, 0} when the request is gone or ended.
 */
const APPEND_OUTPUT = `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'terminal') == 1 then return {-1, 0} end
local maxBytes = tonumber(ARGV[1])
local maxEvents = tonumber(ARGV[2])
local bytes = tonumber(redis.call('HGET', KEYS[1], 'output_bytes') or '0')
local events = tonumber(redis.call('HGET', KEYS[1], 'output_events') or '0')
local sent, dropped = 0, 0
for i = 4, #ARGV, 3 do
  local size = tonumber(ARGV[i + 1])
  if ARGV[i] == 'over' then
    -- The producer side reached the bound first: only the marker (what it dropped it counts itself).
    if redis.call('HSETNX', KEYS[1], 'output_capped', '1') == 1 then
      redis.call('XADD', KEYS[2], '*', 'type', 'output_dropped', 'at', ARGV[3], 'data',
        cjson.encode({limit_bytes = maxBytes, limit_events = maxEvents, final = false}))
    end
  elseif bytes + size <= maxBytes and events < maxEvents then
    redis.call('XADD', KEYS[2], '*', 'type', ARGV[i], 'at', ARGV[3], 'data', ARGV[i + 2])
    bytes = bytes + size
    events = events + 1
    sent = sent + 1
  else
    dropped = dropped + size
    if redis.call('HSETNX', KEYS[1], 'output_capped', '1') == 1 then
      redis.call('XADD', KEYS[2], '*', 'type', 'output_dropped', 'at', ARGV[3], 'data',
        cjson.encode({limit_bytes = maxBytes, limit_events = maxEvents, final = false}))
    end
  end
end
redis.call('HSET', KEYS[1], 'output_bytes', bytes, 'output_events', events)
if dropped > 0 then redis.call('HINCRBY', KEYS[1], 'output_dropped', dropped) end
return {sent, dropped}
`;

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
      ...(h['submitted_by'] ? { submittedBy: h['submitted_by'] } : {}),
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

  // --- Live output, the request index and the submitter (issue 16) ---------------------------------

  /** Appends live output within the request's budget (see APPEND_OUTPUT). */
  async appendOutput(
    requestId: string,
    events: readonly OutputEventInput[],
    limits: { maxBytes: number; maxEvents: number },
  ): Promise<{ sent: number; dropped: number; ended: boolean }> {
    if (events.length === 0) return { sent: 0, dropped: 0, ended: false };
    const args = [String(limits.maxBytes), String(limits.maxEvents), String(Date.now())];
    for (const e of events) args.push(e.type, String(e.bytes), e.data);
    const [sent, dropped] = (await this.redis.eval(
      APPEND_OUTPUT,
      2,
      this.key(requestId),
      this.eventsKey(requestId),
      ...args,
    )) as [number, number];
    return sent < 0 ? { sent: 0, dropped: 0, ended: true } : { sent, dropped, ended: false };
  }

  /**
   * After a run: adds what the sender dropped without sending (`droppedBytes`) to the request's
   * count, and when anything was dropped, one `output_dropped` event with the request's total.
   */
  async outputSummary(requestId: string, droppedBytes = 0): Promise<void> {
    if (droppedBytes > 0) await this.redis.hincrby(this.key(requestId), 'output_dropped', droppedBytes);
    const [dropped, bytes, terminal] = await this.redis.hmget(
      this.key(requestId),
      'output_dropped',
      'output_bytes',
      'terminal',
    );
    if (!dropped || terminal) return;
    await this.redis.xadd(
      this.eventsKey(requestId),
      '*',
      'type',
      'output_dropped',
      'at',
      String(Date.now()),
      'data',
      JSON.stringify({ dropped_bytes: Number(dropped), sent_bytes: Number(bytes ?? 0), final: true }),
    );
  }

  /** The index of requests by submission time (`list`), trimmed to the retention. */
  indexKey(): string {
    return `${this.prefix}:requests`;
  }

  /** Adds a request to the index (and drops entries older than the retention). */
  async index(requestId: string, submittedAt: number, ttlSeconds: number): Promise<void> {
    await this.redis
      .multi()
      .zadd(this.indexKey(), submittedAt, requestId)
      .zremrangebyscore(this.indexKey(), '-inf', `(${Date.now() - ttlSeconds * 1000}`)
      .exec();
  }

  /** Records who submitted a request (the HTTP API's token name). */
  async setSubmitter(requestId: string, name: string): Promise<void> {
    await this.redis.hset(this.key(requestId), 'submitted_by', name);
  }

  /**
   * Requests, newest first, that pass every filter: a page of at most `limit`, and the cursor of
   * the next page (null at the end). Scans at most 5000 index entries per call, so a filter that
   * matches little answers with fewer items and a cursor rather than scanning the whole index.
   */
  async list(filter: RequestListFilter = {}): Promise<{ items: RequestSnapshot[]; nextCursor: string | null }> {
    const limit = Math.max(1, Math.min(500, filter.limit ?? 50));
    const keep = (s: RequestSnapshot | null): s is RequestSnapshot =>
      s !== null &&
      (!filter.statuses?.length || filter.statuses.includes(s.status)) &&
      (!filter.threadId || s.threadId === filter.threadId) &&
      (filter.since === undefined || s.submittedAt >= filter.since) &&
      (filter.until === undefined || s.submittedAt <= filter.until) &&
      (!filter.submittedBy || s.submittedBy === filter.submittedBy);
    if (filter.threadId) {
      const id = await this.redis.get(this.threadKey(filter.threadId));
      const snap = id ? await this.get(id) : null;
      return { items: keep(snap) ? [snap] : [], nextCursor: null };
    }
    let [maxScore, afterId] = decodeCursor(filter.cursor, filter.until);
    const min = filter.since ?? '-inf';
    const items: RequestSnapshot[] = [];
    let scanned = 0;
    while (items.length < limit && scanned < 5000) {
      const batch = Math.min(200, 5000 - scanned);
      const raw = await this.redis.zrevrangebyscore(this.indexKey(), maxScore, min, 'WITHSCORES', 'LIMIT', 0, batch);
      if (raw.length === 0) return { items, nextCursor: null };
      const entries: Array<[string, number]> = [];
      for (let i = 0; i + 1 < raw.length; i += 2) entries.push([raw[i]!, Number(raw[i + 1])]);
      // Entries of the cursor's score up to and including the cursor's id were on earlier pages.
      const fresh = entries.filter(([id, score]) => !(afterId && score === Number(maxScore) && id >= afterId));
      scanned += entries.length;
      const snaps = await Promise.all(fresh.map(([id]) => this.get(id)));
      for (let i = 0; i < fresh.length; i++) {
        const [id, score] = fresh[i]!;
        maxScore = String(score);
        afterId = id;
        const snap = snaps[i] ?? null;
        if (keep(snap)) items.push(snap);
        if (items.length === limit) return { items, nextCursor: encodeCursor(score, id) };
      }
      if (entries.length < batch) return { items, nextCursor: null };
    }
    return { items, nextCursor: afterId ? encodeCursor(Number(maxScore), afterId) : null };
  }

  /** Events after `fromId` ('0' for all), at most `count`, without blocking. */
  async eventsAfter(requestId: string, fromId: string, count = 500): Promise<RequestEvent[]> {
    const entries = (await this.redis.xrange(this.eventsKey(requestId), `(${fromId}`, '+', 'COUNT', count)) as [
      string,
      string[],
    ][];
    return entries.map(([id, fields]) => parseEvent(id, fields));
  }

  /** Reads events after `fromId` ('0' for all), blocking up to `blockMs` (needs a dedicated connection). */
  static async readEvents(redis: Redis, key: string, fromId: string, blockMs: number): Promise<RequestEvent[]> {
    const res = (await redis.xread('COUNT', 100, 'BLOCK', blockMs, 'STREAMS', key, fromId)) as
      | [string, [string, string[]][]][]
      | null;
    if (!res) return [];
    const out: RequestEvent[] = [];
    for (const [, entries] of res) {
      for (const [id, fields] of entries) out.push(parseEvent(id, fields));
    }
    return out;
  }
}

/** One stream entry as a RequestEvent. */
export function parseEvent(id: string, fields: readonly string[]): RequestEvent {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return {
    id,
    type: f['type'] ?? 'unknown',
    at: Number(f['at']),
    ...(f['status'] ? { status: f['status'] as RequestStatus } : {}),
    ...(f['data'] ? { data: JSON.parse(f['data']) } : {}),
  };
}

function encodeCursor(score: number, id: string): string {
  return Buffer.from(`${score}:${id}`, 'utf8').toString('base64url');
}

/** [max score (inclusive), id already seen at that score] of a cursor, or the start of a listing. */
function decodeCursor(cursor: string | undefined, until: number | undefined): [string, string | undefined] {
  if (cursor) {
    const text = Buffer.from(cursor, 'base64url').toString('utf8');
    const at = text.indexOf(':');
    const score = Number(text.slice(0, at));
    if (at > 0 && Number.isFinite(score)) return [String(score), text.slice(at + 1)];
  }
  return [until !== undefined ? String(until) : '+inf', undefined];
}
