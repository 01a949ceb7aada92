import type { RedisConnection as Redis } from '../redis/connection.js';

/**
 * The per-request record in Redis, where producers read a request's progress and response. Every
 * write that two processes could race on, or that a crash could cut in half, is one Lua script.
 *
 *   <prefix>:request:<requestId>   HASH  requestId, threadId, digest (sha256 of the request's
 *                                        canonical JSON), request (JSON), status, submittedAt,
 *                                        updatedAt, cancel ('1'), hold (JSON), terminal, response (JSON),
 *                                        submitted_by (the HTTP API's token name), output_bytes,
 *                                        output_events, output_dropped, output_capped (live output)
 *   <prefix>:events:<requestId>    STREAM  submitted, status, approved, cancel_requested, stdout,
 *                                        stderr, display, output_dropped, finished (MAXLEN ~1000;
 *                                        live output stays within its own budget below that); read
 *                                        from the start by waiters
 *   <prefix>:thread:<threadId>     STR   the latest request submitted on the thread
 *   <prefix>:requests              ZSET  request ids by submission time (`list`), trimmed to the
 *                                        retention at each submit
 *
 * The first three expire after the retention (`pyexec.retention.finished_seconds`), counted from
 * the submit and again from the end.
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

/** What END did: wrote the end, found it already written, or found no record to end. */
export type EndResult = 'recorded' | 'already_ended' | 'missing';

/**
 * KEYS: thread, request, events, index, the record of the thread's request as read before the
 * call (the new request's own key when the thread had none). ARGV: the thread's request as read
 * ('' for none), requestId, threadId, digest, request JSON, now, ttl, submitter ('' for none).
 * Returns {requestId, 1} when recorded, {the thread's request, 0} when it is this same request,
 * {the thread's request, 2} when the thread's request is another submitter's (nothing written: a
 * producer cannot take over another's thread), {the thread's request, 3} when the thread moved
 * since it was read (nothing written: read again and retry). Every key is declared in KEYS (Redis
 * Cluster routes and checks scripts by their declared keys).
 */
const SUBMIT = `
local cur = redis.call('GET', KEYS[1])
if (cur or '') ~= ARGV[1] then return {cur or '', 3} end
if cur then
  local ck = KEYS[5]
  if redis.call('EXISTS', ck) == 1 and (redis.call('HGET', ck, 'submitted_by') or '') ~= ARGV[8] then return {cur, 2} end
  if redis.call('HGET', ck, 'digest') == ARGV[4] then return {cur, 0} end
end
redis.call('HSET', KEYS[2], 'requestId', ARGV[2], 'threadId', ARGV[3], 'digest', ARGV[4], 'request', ARGV[5],
  'status', 'queued', 'submittedAt', ARGV[6], 'updatedAt', ARGV[6])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], 'submitted_by', ARGV[8]) end
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', '1000', '*', 'type', 'submitted', 'at', ARGV[6], 'status', 'queued')
redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (tonumber(ARGV[6]) - tonumber(ARGV[7]) * 1000))
return {ARGV[2], 1}`;

// Sets a non-terminal status and records its event (KEYS: request, events; ARGV: status, now,
// data or ''), unless the record is missing or terminal (then it returns `skipped`); returns `done`.
const setStatusLua = (skipped: string, done: string) => `
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'terminal') == 1 then return ${skipped} end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updatedAt', ARGV[2])
if ARGV[3] == '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*', 'type', 'status', 'at', ARGV[2], 'status', ARGV[1])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000', '*', 'type', 'status', 'at', ARGV[2], 'status', ARGV[1], 'data', ARGV[3])
end
return ${done}`;

const STATUS = setStatusLua('0', '1');

// A stage's start in one round trip: ended (a response is recorded: nothing more runs), cancel
// (the producer asked, and ARGV[4] says this stage honours it), or started (the working status
// set as STATUS sets it; a missing record is left missing, and the stage runs as before).
const BEGIN = `
if redis.call('HEXISTS', KEYS[1], 'response') == 1 then return 'ended' end
if ARGV[4] == '1' and redis.call('HGET', KEYS[1], 'cancel') == '1' then return 'cancel' end
${setStatusLua("'started'", "'started'")}`;

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

/** How a stage's start went (RequestStore.beginStage). */
export type StageStart = 'ended' | 'cancel' | 'started';

type Scripts = {
  pyexecSubmit(
    thread: string,
    request: string,
    events: string,
    index: string,
    current: string,
    expected: string,
    requestId: string,
    threadId: string,
    digest: string,
    json: string,
    now: number,
    ttl: number,
    submitter: string,
  ): Promise<[string, number]>;
  pyexecStatus(request: string, events: string, status: string, now: number, data: string): Promise<number>;
  pyexecBegin(
    request: string,
    events: string,
    status: string,
    now: number,
    data: string,
    honourCancel: string,
  ): Promise<StageStart>;
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
    redis.defineCommand('pyexecSubmit', { numberOfKeys: 5, lua: SUBMIT });
    redis.defineCommand('pyexecStatus', { numberOfKeys: 2, lua: STATUS });
    redis.defineCommand('pyexecBegin', { numberOfKeys: 2, lua: BEGIN });
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
   * and serialised by the caller: nothing here can fail half-way. The same step records the
   * submitter (`submittedBy`, the HTTP API's token name) and adds the request to the index of
   * `list`. A thread whose request is another submitter's is left alone: `conflict: true`.
   */
  async submit(input: {
    requestId: string;
    threadId: string;
    digest: string;
    requestJson: string;
    ttlSeconds: number;
    submittedBy?: string | undefined;
    /** @defaultValue now */
    submittedAt?: number;
  }): Promise<{ requestId: string; created: boolean; conflict: boolean }> {
    const thread = this.threadKey(input.threadId);
    // The thread's request is read first so that its record is a declared key of the script; the
    // script refuses (3) if the thread moved in between, and the read is done again.
    for (let attempt = 1; ; attempt++) {
      const current = (await this.redis.get(thread)) ?? '';
      const [requestId, outcome] = await this.redis.pyexecSubmit(
        thread,
        this.key(input.requestId),
        this.eventsKey(input.requestId),
        this.indexKey(),
        this.key(current || input.requestId),
        current,
        input.requestId,
        input.threadId,
        input.digest,
        input.requestJson,
        input.submittedAt ?? Date.now(),
        input.ttlSeconds,
        input.submittedBy ?? '',
      );
      if (outcome === 3 && attempt < 20) continue;
      if (outcome === 3) throw new Error(`submit: thread ${input.threadId} kept changing under 20 attempts`);
      return { requestId, created: outcome === 1, conflict: outcome === 2 };
    }
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

  /**
   * A stage's start, in one round trip: `ended` when a response is recorded (the stage does
   * nothing), `cancel` when the producer asked to cancel and `honourCancel` says this stage acts on
   * it, else `started` with the working status set (setStatus's rules).
   */
  async beginStage(
    requestId: string,
    status: RequestStatus,
    data: Record<string, unknown>,
    honourCancel: boolean,
  ): Promise<StageStart> {
    return this.redis.pyexecBegin(
      this.key(requestId),
      this.eventsKey(requestId),
      status,
      Date.now(),
      JSON.stringify(data),
      honourCancel ? '1' : '0',
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

  // --- Live output and the request index (issue 16) ----------------------------------------------

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
