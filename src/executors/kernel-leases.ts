import { type RedisConnection as Redis, scanKeys } from '../redis/connection.js';
import type { ExecutionMode } from './executor.js';

/**
 * The pool's records in Redis, under `<prefix>:kpool:<poolId>`. Every state change that two
 * processes could race on is one Lua script, so a kernel is never handed to two leases at once.
 *
 *   :kernels            SET   kernel keys (`<server>|<kernelId>`)
 *   :k:<kernel>         HASH  server, kernelId, mode, state, lease, owner, since, created, uses
 *   :idle:<mode>        LIST  kernel keys ready to lease, oldest first
 *   :lease:<kernel>     STR   lease id, PX lease TTL (renewed by the holder's heartbeat)
 *   :lock:<kernel>      STR   token of the process resetting the kernel, PX
 *   :down:<server>      STR   present while the server is skipped (PX server_down_ms)
 *   :provision          STR   lock of the process starting missing kernels
 *
 * Kernel states: `idle` (in the idle list) → `leased` (a lease key exists) → `recycling` (a lock
 * key exists: a fresh kernel is being started to take its place, after which its record is removed;
 * or, when none can be started, it is restarted in place) → `idle`. A `leased` kernel whose lease
 * key expired, or a `recycling` one whose lock expired, belongs to a dead process: any process may
 * claim it.
 */
export type KernelState = 'idle' | 'leased' | 'recycling';

export interface KernelRecord {
  readonly key: string;
  readonly server: string;
  readonly kernelId: string;
  readonly mode: ExecutionMode;
  readonly state: KernelState;
  readonly created: number;
  readonly uses: number;
}

/**
 * Claims one candidate read from the idle list (every key it touches in KEYS, none built here).
 * KEYS: idle list, the kernel's hash, its lease, its server's down marker. ARGV: kernel key, lease
 * id, owner, lease ms, now. Returns 1 (claimed), 0 (not in the idle list any more: taken by
 * another process), -1 (not idle: dropped from the list), -2 (its server is down: moved to the back).
 */
const CLAIM = `
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if not redis.call('HGET', KEYS[2], 'server') or redis.call('HGET', KEYS[2], 'state') ~= 'idle' then return -1 end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('RPUSH', KEYS[1], ARGV[1])
  return -2
end
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[4])
redis.call('HSET', KEYS[2], 'state', 'leased', 'lease', ARGV[2], 'owner', ARGV[3], 'since', ARGV[5])
redis.call('HINCRBY', KEYS[2], 'uses', 1)
return 1`;

const HEARTBEAT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
redis.call('HSET', KEYS[2], 'state', 'recycling', 'lease', '', 'owner', '', 'since', ARGV[4])
return 1`;

const REAP = `
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'leased' then
  if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
elseif state == 'recycling' then
  if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
else
  return 0
end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[1], 'state', 'recycling', 'lease', '', 'owner', '', 'since', ARGV[3])
return state == 'leased' and 1 or 2`;

const READY = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'state', 'idle', 'since', ARGV[2])
redis.call('LREM', KEYS[3], 0, ARGV[3])
redis.call('RPUSH', KEYS[3], ARGV[3])
return 1`;

const EXTEND_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

type Scripts = {
  kpoolClaim(
    idle: string,
    hash: string,
    lease: string,
    down: string,
    kernel: string,
    leaseId: string,
    owner: string,
    ttlMs: number,
    now: number,
  ): Promise<number>;
  kpoolHeartbeat(lease: string, leaseId: string, ttlMs: number): Promise<number>;
  kpoolRelease(
    lease: string,
    hash: string,
    lock: string,
    leaseId: string,
    token: string,
    lockMs: number,
    now: number,
  ): Promise<number>;
  kpoolReap(hash: string, lease: string, lock: string, token: string, lockMs: number, now: number): Promise<number>;
  kpoolReady(lock: string, hash: string, idle: string, token: string, now: number, kernel: string): Promise<number>;
  kpoolExtendLock(lock: string, token: string, ms: number): Promise<number>;
};

function withScripts(redis: Redis): Redis & Scripts {
  const r = redis as Redis & Partial<Scripts>;
  if (!r.kpoolClaim) {
    redis.defineCommand('kpoolClaim', { numberOfKeys: 4, lua: CLAIM });
    redis.defineCommand('kpoolHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT });
    redis.defineCommand('kpoolRelease', { numberOfKeys: 3, lua: RELEASE });
    redis.defineCommand('kpoolReap', { numberOfKeys: 3, lua: REAP });
    redis.defineCommand('kpoolReady', { numberOfKeys: 3, lua: READY });
    redis.defineCommand('kpoolExtendLock', { numberOfKeys: 1, lua: EXTEND_LOCK });
  }
  return r as Redis & Scripts;
}

/** The Redis side of one pool: records, leases, locks. No Jupyter calls here. */
export class LeaseStore {
  private readonly redis: Redis & Scripts;
  readonly base: string;

  constructor(redis: Redis, prefix: string, poolId: string) {
    this.redis = withScripts(redis);
    this.base = `${prefix}:kpool:${poolId}`;
  }

  private hash = (k: string) => `${this.base}:k:${k}`;
  private lease = (k: string) => `${this.base}:lease:${k}`;
  private lock = (k: string) => `${this.base}:lock:${k}`;
  private idle = (mode: ExecutionMode) => `${this.base}:idle:${mode}`;
  private down = (server: string) => `${this.base}:down:${server}`;
  private get set() {
    return `${this.base}:kernels`;
  }

  static kernelKey(server: string, kernelId: string): string {
    return `${server}|${kernelId}`;
  }

  /** Records a new, ready kernel and offers it for lease. */
  async register(server: string, kernelId: string, mode: ExecutionMode): Promise<string> {
    const key = LeaseStore.kernelKey(server, kernelId);
    const now = String(Date.now());
    await this.redis
      .multi()
      .hset(this.hash(key), {
        server,
        kernelId,
        mode,
        state: 'idle',
        lease: '',
        owner: '',
        since: now,
        created: now,
        uses: '0',
      })
      .sadd(this.set, key)
      .rpush(this.idle(mode), key)
      .exec();
    return key;
  }

  async remove(key: string, mode: ExecutionMode): Promise<void> {
    await this.redis
      .multi()
      .del(this.hash(key), this.lease(key), this.lock(key))
      .lrem(this.idle(mode), 0, key)
      .srem(this.set, key)
      .exec();
  }

  async get(key: string): Promise<KernelRecord | null> {
    return toRecord(key, await this.redis.hgetall(this.hash(key)));
  }

  async all(): Promise<KernelRecord[]> {
    const keys = await this.redis.smembers(this.set);
    if (keys.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const k of keys) pipe.hgetall(this.hash(k));
    const rows = (await pipe.exec()) ?? [];
    return keys
      .map((k, i) => toRecord(k, rows[i]?.[1] as Record<string, string> | undefined))
      .filter((r): r is KernelRecord => r !== null);
  }

  /**
   * Leases the oldest idle kernel of the mode whose server is not down, or returns null. The idle
   * list is read first and each candidate claimed by its own script (so that every key a script
   * touches is declared, as Redis Cluster requires); one another process took meanwhile is skipped.
   */
  async claim(mode: ExecutionMode, leaseId: string, owner: string, ttlMs: number): Promise<string | null> {
    const idle = this.idle(mode);
    for (const k of await this.redis.lrange(idle, 0, -1)) {
      const server = k.slice(0, k.lastIndexOf('|'));
      const r = await this.redis.kpoolClaim(
        idle,
        this.hash(k),
        this.lease(k),
        this.down(server),
        k,
        leaseId,
        owner,
        ttlMs,
        Date.now(),
      );
      if (r === 1) return k;
    }
    return null;
  }

  async heartbeat(key: string, leaseId: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.kpoolHeartbeat(this.lease(key), leaseId, ttlMs)) === 1;
  }

  /** Ends a lease and takes the reset lock; false when the lease had already expired. */
  async release(key: string, leaseId: string, token: string, lockMs: number): Promise<boolean> {
    return (
      (await this.redis.kpoolRelease(
        this.lease(key),
        this.hash(key),
        this.lock(key),
        leaseId,
        token,
        lockMs,
        Date.now(),
      )) === 1
    );
  }

  /** Takes a kernel whose holder died (expired lease or reset lock): 'expired_lease' | 'abandoned_reset' | null. */
  async reap(key: string, token: string, lockMs: number): Promise<'expired_lease' | 'abandoned_reset' | null> {
    const r = await this.redis.kpoolReap(this.hash(key), this.lease(key), this.lock(key), token, lockMs, Date.now());
    return r === 1 ? 'expired_lease' : r === 2 ? 'abandoned_reset' : null;
  }

  /** Offers a reset kernel for lease again (only while this process still holds its lock). */
  async ready(key: string, mode: ExecutionMode, token: string): Promise<boolean> {
    return (await this.redis.kpoolReady(this.lock(key), this.hash(key), this.idle(mode), token, Date.now(), key)) === 1;
  }

  async extendLock(key: string, token: string, ms: number): Promise<void> {
    await this.redis.kpoolExtendLock(this.lock(key), token, ms);
  }

  async markDown(server: string, ms: number): Promise<void> {
    await this.redis.set(this.down(server), '1', 'PX', ms);
  }

  async isDown(server: string): Promise<boolean> {
    return (await this.redis.exists(this.down(server))) === 1;
  }

  /** A short lock for starting missing kernels; true when this process got it. */
  async lockProvision(token: string, ms: number): Promise<boolean> {
    return (await this.redis.set(`${this.base}:provision`, token, 'PX', ms, 'NX')) === 'OK';
  }

  /** Renews the provisioning lock while its holder still holds it. */
  async extendProvision(token: string, ms: number): Promise<void> {
    await this.redis.kpoolExtendLock(`${this.base}:provision`, token, ms);
  }

  async unlockProvision(token: string): Promise<void> {
    if ((await this.redis.get(`${this.base}:provision`)) === token) await this.redis.del(`${this.base}:provision`);
  }

  /** Removes every key of this pool (a private pool whose servers are going away). */
  async destroy(): Promise<void> {
    const keys = await scanKeys(this.redis, `${this.base}:*`);
    for (let i = 0; i < keys.length; i += 200) await this.redis.del(...keys.slice(i, i + 200));
  }
}

function toRecord(key: string, h: Record<string, string> | undefined): KernelRecord | null {
  if (!h?.['server'] || !h['kernelId']) return null;
  return {
    key,
    server: h['server'],
    kernelId: h['kernelId'],
    mode: h['mode'] === 'write_access' ? 'write_access' : 'read_only',
    state: (h['state'] as KernelState) ?? 'recycling',
    created: Number(h['created'] ?? 0),
    uses: Number(h['uses'] ?? 0),
  };
}
