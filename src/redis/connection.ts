import { Redis, type RedisOptions } from 'ioredis';

/**
 * Redis connections. Workers wait out a lost connection (`maxRetriesPerRequest: null`, as BullMQ
 * requires); producers and tools fail fast (`enableOfflineQueue: false`, one retry per command).
 */
export function createRedis(url: string, role: 'worker' | 'producer', extra: RedisOptions = {}): Redis {
  const base: RedisOptions =
    role === 'worker'
      ? { maxRetriesPerRequest: null, enableReadyCheck: true }
      : { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5000 };
  const redis = new Redis(url, { ...base, ...extra, lazyConnect: role === 'producer' ? true : extra.lazyConnect });
  // Errors surface on commands; an unhandled 'error' event would crash the process.
  redis.on('error', () => {});
  return redis;
}

/** The key prefix of a fleet, in {braces} so every key hashes to one Redis Cluster slot. */
export function keyPrefix(prefix: string): string {
  return prefix.startsWith('{') ? prefix : `{${prefix}}`;
}

/** Connects (if needed) and waits until the connection is ready; rejects after `timeoutMs`. */
export async function waitReady(redis: Redis, timeoutMs = 5000): Promise<void> {
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
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}
