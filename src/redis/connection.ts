import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

/**
 * A connection to the fleet's Redis: one server, or a Redis Cluster. On a cluster every key of a
 * fleet carries one hash tag (`keyPrefix`), so every script and every BullMQ queue of the fleet
 * works on one slot: the cluster gives failover (a replica takes over the slot), not sharding.
 */
export type RedisConnection = Redis | Cluster;

/** `pyexec.redis.cluster`: the seed nodes of a Redis Cluster (any reachable one is enough). */
export interface RedisClusterSettings {
  /** redis:// or rediss:// URLs; the first one's user, password and TLS are used for every node. */
  readonly nodes: readonly string[];
}

/**
 * Redis connections. Workers wait out a lost connection (`maxRetriesPerRequest: null`, as BullMQ
 * requires); producers and tools fail fast (`enableOfflineQueue: false`, one retry per command).
 * With `cluster` set, an ioredis Cluster seeded by its nodes (`url` is then unused).
 */
export function createRedis(
  url: string,
  role: 'worker' | 'producer',
  extra: RedisOptions = {},
  cluster?: RedisClusterSettings,
): RedisConnection {
  const base: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5000 };
  const lazyConnect = role === 'producer' ? true : extra.lazyConnect;
  const redis = cluster
    ? createCluster(cluster, role, { ...base, ...extra }, lazyConnect)
    : new Redis(url, { ...base, ...extra, lazyConnect });
  // Errors surface on commands; an unhandled 'error' event would crash the process.
  redis.on('error', () => {});
  return redis;
}

function createCluster(
  settings: RedisClusterSettings,
  role: 'worker' | 'producer',
  options: RedisOptions,
  lazyConnect: boolean | undefined,
): Cluster {
  if (settings.nodes.length === 0) throw new Error('pyexec.redis.cluster.nodes: no seed node');
  const urls = settings.nodes.map((n) => new URL(n));
  const first = urls[0]!;
  const { enableOfflineQueue, retryStrategy: _r, ...redisOptions } = options;
  const clusterOptions: ClusterOptions = {
    lazyConnect,
    enableOfflineQueue: enableOfflineQueue ?? true,
    enableReadyCheck: true,
    redisOptions: {
      ...redisOptions,
      ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
      ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
      ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
    },
    // A producer whose first connection finds no node answering gives up (a clear error at once,
    // not a hang); once it has been connected it reconnects after a loss, as a worker always does.
    clusterRetryStrategy: (times: number) => (role === 'producer' && !connected ? null : Math.min(100 * times, 2000)),
  };
  let connected = false;
  const cluster = new Cluster(
    urls.map((u) => ({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) })),
    clusterOptions,
  );
  cluster.once('ready', () => {
    connected = true;
  });
  return cluster;
}

/** A new connection to the same Redis (or cluster) that rides out lost connections (a dedicated reader). */
export function duplicateConnection(redis: RedisConnection): RedisConnection {
  const copy = isCluster(redis)
    ? redis.duplicate([], {
        enableOfflineQueue: true,
        lazyConnect: false,
        clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000),
      })
    : redis.duplicate({ enableOfflineQueue: true, lazyConnect: false });
  copy.on('error', () => {});
  return copy;
}

/** True when `redis` is a Redis Cluster connection. */
export function isCluster(redis: RedisConnection): redis is Cluster {
  return redis instanceof Cluster;
}

/**
 * Every key matching `pattern` (SCAN). On a cluster SCAN is per node: every master is scanned
 * (a fleet's keys all live on the master of its slot, so the others answer nothing).
 */
export async function scanKeys(redis: RedisConnection, pattern: string): Promise<string[]> {
  const nodes = isCluster(redis) ? redis.nodes('master') : [redis];
  const out = new Set<string>();
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 200);
      cursor = next;
      for (const k of keys) out.add(k);
    } while (cursor !== '0');
  }
  return [...out];
}

/** The key prefix of a fleet, in {braces} so every key hashes to one Redis Cluster slot. */
export function keyPrefix(prefix: string): string {
  return prefix.startsWith('{') ? prefix : `{${prefix}}`;
}

/** Connects (if needed) and waits until the connection is ready; rejects after `timeoutMs`. */
export async function waitReady(redis: RedisConnection, timeoutMs = 5000): Promise<void> {
  if (!isCluster(redis)) return waitOne(redis, timeoutMs);
  try {
    await waitOne(redis, timeoutMs);
  } catch (err) {
    const seeds = (redis as unknown as { startupNodes: { host: string; port: number }[] }).startupNodes
      .map((n) => `${n.host}:${n.port}`)
      .join(', ');
    throw new Error(`Redis Cluster unreachable (seed nodes ${seeds}): ${(err as Error).message}`);
  }
}

async function waitOne(redis: RedisConnection, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return;
  if (redis.status === 'wait') redis.connect().catch(() => {});
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => done(new Error(`not ready after ${timeoutMs} ms (status ${redis.status})`)),
      timeoutMs,
    );
    const onReady = () => done();
    const onError = (err: Error) => (lastError = err);
    const onEnd = () => done(lastError ?? new Error('connection closed'));
    let lastError: Error | undefined;
    const done = (err?: Error) => {
      clearTimeout(timer);
      redis.off('ready', onReady).off('error', onError).off('end', onEnd);
      if (err) reject(lastError ?? err);
      else resolve();
    };
    redis.on('ready', onReady).on('error', onError).on('end', onEnd);
  });
}

/** A Redis URL fit for logs and messages: the password (and a user's secret) replaced by `***`. */
export function redactUrl(url: string): string {
  if (url.includes(',')) return url.split(',').map(redactUrl).join(',');
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
