/**
 * Redis in a container, through testcontainers, for machines with a Docker engine: the harness uses
 * it when PYEXEC_TEST_DOCKER=1 (otherwise, and on this project's build machines, which have no
 * engine, it starts a local redis-server). testcontainers is imported only here and only then:
 * nothing else depends on Docker.
 */
import { randomBytes } from 'node:crypto';
import type { LocalRedis } from '../../src/redis/redis-server.js';

/** Why containers cannot run here, or null when a Docker engine answers. */
export async function dockerUnavailable(): Promise<string | null> {
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return null;
  } catch (err) {
    return `no Docker engine (testcontainers: ${(err as Error).message.split('\n')[0]})`;
  }
}

/** Redis as pyexec requires it (noeviction), in a container; the same shape as a local redis-server. */
export async function startRedisContainer(image = 'redis:7.4-alpine'): Promise<LocalRedis> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const password = randomBytes(24).toString('hex');
  const container = await new GenericContainer(image)
    .withCommand([
      'redis-server',
      '--maxmemory-policy',
      'noeviction',
      '--save',
      '',
      '--appendonly',
      'no',
      '--requirepass',
      password,
    ])
    .withExposedPorts(6379)
    .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
    .start();
  const port = container.getMappedPort(6379);
  let stopped: Promise<void> | undefined;
  return {
    url: `redis://:${password}@${container.getHost()}:${port}`,
    safeUrl: `redis://${container.getHost()}:${port}`,
    password,
    port,
    stop: () => (stopped ??= container.stop().then(() => undefined)),
    kill: () => {
      void container.stop({ timeout: 0 }).catch(() => {});
    },
    restart: () => container.restart(),
  };
}
