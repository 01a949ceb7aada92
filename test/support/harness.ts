/**
 * The integration-test harness: a real `redis-server` on a free loopback port (started once per
 * test file), a config with a private key prefix and execution root per test, and fleet/client
 * helpers that are closed after each test.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PyexecClient } from '../../src/client/pyexec-client.js';
import { type Config, type ConfigInput, parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { projectRoot } from '../../src/python-env.js';
import { type LocalRedis, startLocalRedis } from '../../src/redis/redis-server.js';
import { Fleet, type FleetOptions } from '../../src/workers/fleet.js';

let shared: Promise<LocalRedis> | undefined;

/**
 * One Redis per test file (process); stopped by `stopRedis()` in `after`. A local redis-server on a
 * free loopback port, or with PYEXEC_TEST_DOCKER=1 a Redis container started by testcontainers
 * (test/support/redis-container.ts; it fails, saying why, where no Docker engine answers).
 */
export function redis(): Promise<LocalRedis> {
  shared ??=
    process.env['PYEXEC_TEST_DOCKER'] === '1'
      ? import('./redis-container.js').then(async (m) => {
          const why = await m.dockerUnavailable();
          if (why) throw new Error(`PYEXEC_TEST_DOCKER=1, but ${why}`);
          return m.startRedisContainer();
        })
      : startLocalRedis();
  return shared;
}

export async function stopRedis(): Promise<void> {
  if (shared) await (await shared).stop();
  shared = undefined;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && a[k] && typeof a[k] === 'object'
        ? merge(a[k] as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** A test config: private prefix, private execution root, fast locks, no approval unless asked. */
export function testConfig(
  overrides: DeepPartial<ConfigInput> | Record<string, unknown> = {},
): Config & { cleanup(): void } {
  const root = mkdtempSync(path.join(tmpdir(), 'pyexec-test-'));
  const base = {
    python_executor: { max_generation_retries: 2, max_execution_retries: 2, execution_timeout_seconds: 60 },
    execution: { code_generator: 'mock', execution_method: 'local' },
    approval: { global_mode: 'disabled' },
    control_system: { writes_enabled: true },
    pyexec: {
      redis: { prefix: `test-${randomUUID()}` },
      execution_root: root,
      metrics_port: 0,
      infra_backoff_ms: 50,
      lock_duration_ms: 5000,
      stalled_interval_ms: 5000,
    },
  };
  const config = parseConfig(merge(base, overrides as Record<string, unknown>), {});
  return Object.assign(config, {
    cleanup: () => removeRoot(root),
  });
}

/**
 * Removes a test's execution root. Something has (rarely, under load) still been creating files in
 * a request's folder after every fleet closed (ENOTEMPTY; cause not found yet): retry for ~10 s, and
 * if files still appear, name them on stderr rather than fail the test whose assertions passed.
 */
function removeRoot(root: string): void {
  try {
    rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  } catch (err) {
    const left = readdirSync(root, { recursive: true }).map(String);
    process.stderr.write(
      `harness: ${root} could not be removed (${(err as Error).message}); still there: ${left.join(', ')}\n`,
    );
  }
}

export interface TestBed {
  readonly config: Config & { cleanup(): void };
  readonly redisUrl: string;
  readonly client: PyexecClient;
  readonly fleets: Fleet[];
  startFleet(options?: Partial<FleetOptions>): Promise<Fleet>;
  close(): Promise<void>;
}

/** A config, a client and fleets on the shared Redis; `close()` in afterEach. */
export async function testBed(overrides: Parameters<typeof testConfig>[0] = {}): Promise<TestBed> {
  const server = await redis();
  const config = testConfig(overrides);
  const client = await PyexecClient.connect({ redisUrl: server.url, config });
  const fleets: Fleet[] = [];
  return {
    config,
    redisUrl: server.url,
    client,
    fleets,
    async startFleet(options = {}) {
      const fleet = await Fleet.start({
        config,
        redisUrl: server.url,
        logger: silentLogger(),
        metricsPort: null,
        ...options,
      });
      fleets.push(fleet);
      return fleet;
    },
    async close() {
      await Promise.allSettled(fleets.map((f) => f.close()));
      await client.close();
      config.cleanup();
    },
  };
}

/** A minimal valid request. */
export function sampleRequest(extra: Record<string, unknown> = {}) {
  return {
    user_query: 'What is the answer?',
    task_objective: 'Compute the answer and return it in results',
    execution_folder_name: 'test_run',
    ...extra,
  };
}

/** Polls `check` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let workerConfigs = 0;

/**
 * `pyexec worker <stages>` on the bed's config (written as a file: JSON is YAML), as SREs run it;
 * with `fault`, test/support/worker-entry.ts instead, which exits (137) at that FaultPoint. Its
 * stderr is kept for messages (`stderrText()`). The caller kills it.
 */
export function spawnWorker(
  b: TestBed,
  stages: readonly string[],
  options: { fault?: string; metricsPort?: number | null } = {},
): ChildProcess & { stderrText(): string } {
  const file = path.join(b.config.pyexec.execution_root, `worker-config-${++workerConfigs}.yml`);
  const metrics_port = options.metricsPort === undefined ? 0 : options.metricsPort;
  writeFileSync(file, JSON.stringify({ ...b.config, pyexec: { ...b.config.pyexec, metrics_port } }));
  const args = options.fault
    ? ['--import', 'tsx', path.join(projectRoot, 'test/support/worker-entry.ts'), file, b.redisUrl, options.fault]
    : [path.join(projectRoot, 'bin/pyexec.js'), '--config', file, '--redis', b.redisUrl, 'worker'];
  const child = spawn('node', [...args, ...stages], {
    env: { ...process.env, PYEXEC_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return Object.assign(child, { stderrText: () => stderr });
}
