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
