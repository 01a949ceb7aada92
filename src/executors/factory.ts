import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { EXECUTION_METHODS, type ExecutionMethod } from '../modes.js';
import { createRedis } from '../redis/connection.js';
import { type ConfinementStatus, checkConfinement } from './confinement.js';
import type { Executor } from './executor.js';
import { JupyterExecutor, type KernelLimits } from './jupyter-executor.js';
import { type JupyterServerRef, type SpawnedJupyterServer, spawnJupyterServer } from './jupyter-server.js';
import { KernelPool } from './kernel-pool.js';
import { LocalExecutor } from './local-executor.js';
import { kernelModes, kernelPoolSettings } from './pool-config.js';

export interface ExecutorSet {
  readonly executors: Partial<Record<ExecutionMethod, Executor>>;
  /** The container pool (when built), for readiness and tests. */
  readonly pool?: KernelPool;
  /** The Jupyter servers this process started (none with a static pool). */
  readonly spawned: readonly SpawnedJupyterServer[];
  /** How kernels and runners are confined (checked before any started). */
  readonly confinement: ConfinementStatus;
  /** True when every built method can run code now (the pool has a kernel per mode it serves). */
  ready(): Promise<boolean>;
  /** Closes the pool, stops spawned Jupyter servers, closes the Redis connection. Idempotent. */
  close(): Promise<void>;
}

export interface CreateExecutorsDeps {
  readonly redisUrl: string;
  /** The fleet's key prefix, `{pyexec}` (keyPrefix(config.pyexec.redis.prefix)). */
  readonly prefix: string;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Which methods to build. @defaultValue local, and container when it is the method or a request may choose it */
  readonly methods?: readonly ExecutionMethod[];
}

/**
 * Loads `control_system.limits_checking` (fail fast: a missing or malformed database stops the
 * process at start-up, as Osprey's validator does). Null when checking is off.
 */
export function loadLimits(config: Config): (KernelLimits & { file: string }) | null {
  const lc = config.control_system.limits_checking;
  if (!lc.enabled) return null;
  if (!lc.database_path)
    throw new ConfigError('control_system.limits_checking.database_path: required when limits checking is enabled');
  const file = path.resolve(config.pyexec.config_dir, lc.database_path);
  let database: unknown;
  try {
    database = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(
      `control_system.limits_checking.database_path: cannot load ${file}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (!database || typeof database !== 'object' || Array.isArray(database)) {
    throw new ConfigError(`control_system.limits_checking.database_path: ${file} must hold a JSON object`);
  }
  return {
    file,
    database: database as Record<string, unknown>,
    allow_unlisted: lc.allow_unlisted_channels,
    on_violation: lc.on_violation,
  };
}

/**
 * Builds the execution methods of a worker process: `local` (a Python subprocess) and `container`
 * (a kernel pool over the Jupyter servers of `execution.container.pool.servers`, or over
 * `spawn.count` servers this process starts when none are listed). Both get the channel limits.
 */
export async function createExecutors(config: Config, deps: CreateExecutorsDeps): Promise<ExecutorSet> {
  const limits = loadLimits(config);
  const methods =
    deps.methods ??
    (config.execution.execution_method === 'container' || config.execution.allow_method_override
      ? [...EXECUTION_METHODS]
      : ['local']);
  const modes = kernelModes(config);
  const settings = kernelPoolSettings(config);
  // Fail closed before anything starts: kernels (spawned here) and local runs confine themselves.
  const runsHere = methods.includes('local') || (methods.includes('container') && settings.servers.length === 0);
  const confinement = await checkConfinement(config, runsHere, deps.logger);
  const executors: Partial<Record<ExecutionMethod, Executor>> = {};
  let local: LocalExecutor | undefined;
  if (methods.includes('local')) {
    const limitsEnv: Record<string, string> = limits
      ? {
          PYEXEC_LIMITS_FILE: limits.file,
          PYEXEC_LIMITS_ALLOW_UNLISTED: String(limits.allow_unlisted),
          PYEXEC_LIMITS_ON_VIOLATION: limits.on_violation,
        }
      : {};
    executors.local = local = new LocalExecutor({
      python: config.execution.local.python_env_path ?? config.pyexec.python,
      modeEnv: {
        read_only: modes.read_only.environment,
        write_access: { ...modes.write_access.environment, ...limitsEnv },
      },
      maxOutputBytes: config.pyexec.max_output_bytes,
      confinement: config.execution.confinement,
      logger: deps.logger.child({ component: 'local-executor' }),
    });
  }
  if (!methods.includes('container'))
    return { executors, confinement, spawned: [], ready: async () => true, close: async () => local?.close() };

  const log = deps.logger.child({ component: 'executors' });
  const spawned: SpawnedJupyterServer[] = [];
  const redis = createRedis(deps.redisUrl, 'worker', {}, config.pyexec.redis.cluster);
  let pool: KernelPool | undefined;
  const stopAll = async () => {
    await local?.close();
    await pool?.close();
    await Promise.allSettled(spawned.map((s) => s.stop()));
    redis.disconnect();
  };
  try {
    let servers: JupyterServerRef[];
    let poolId: string;
    if (settings.servers.length > 0) {
      servers = settings.servers.map((s) => ({
        name: s.name ?? s.url,
        url: s.url.endsWith('/') ? s.url : `${s.url}/`,
        token: s.token,
        modes: s.modes,
      }));
      const urls = servers.map((s) => s.url).sort();
      poolId = `static-${createHash('sha256').update(urls.join(' ')).digest('hex').slice(0, 12)}`;
    } else {
      // One server per mode (spawn.count of each): a read-only kernel shares no server, runtime
      // folder or token with write kernels.
      // Started side by side: most of a server's start-up is Python importing, waiting on the disk.
      mkdirSync(config.pyexec.execution_root, { recursive: true });
      const starting = settings.spawn.modes.flatMap((mode) =>
        Array.from({ length: settings.spawn.count }, () =>
          spawnJupyterServer({
            modes,
            serve: [mode],
            python: config.pyexec.python,
            startupTimeoutMs: settings.spawn.startup_timeout_ms,
            confinement: config.execution.confinement,
            executionRoot: config.pyexec.execution_root,
          }),
        ),
      );
      const started = await Promise.allSettled(starting);
      for (const s of started) if (s.status === 'fulfilled') spawned.push(s.value);
      const failed = started.find((s) => s.status === 'rejected');
      if (failed) throw failed.reason;
      servers = spawned;
      poolId = `local-${randomUUID().slice(0, 12)}`;
      log.info({ servers: spawned.map((s) => s.url) }, 'started local Jupyter servers for the kernel pool');
    }
    pool = await KernelPool.start({
      redis,
      prefix: deps.prefix,
      poolId,
      servers,
      modes,
      settings,
      logger: deps.logger,
      metrics: deps.metrics,
      privatePool: spawned.length > 0,
    });
  } catch (err) {
    await stopAll();
    throw err;
  }
  executors.container = new JupyterExecutor({
    pool,
    maxOutputBytes: config.pyexec.max_output_bytes,
    interruptGraceMs: settings.interrupt_grace_ms,
    limits,
    confinement: config.execution.confinement,
  });
  let closing: Promise<void> | undefined;
  const built = pool;
  return {
    executors,
    confinement,
    spawned,
    pool: built,
    ready: () => built.ready(),
    close: () => (closing ??= stopAll()),
  };
}
