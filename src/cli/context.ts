import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Config, loadConfig } from '../config.js';
import { configError, redisUrlProblem } from '../config-checks.js';
import { ConfigError } from '../errors.js';

/** Options every command takes. */
export interface GlobalOptions {
  config?: string;
  redis?: string;
}

/** Where `pyexec up` records its embedded Redis, so other commands on this machine find it. */
export const stateFile = (): string => path.resolve(process.env['PYEXEC_STATE_DIR'] ?? '.pyexec', 'up.json');

export interface UpState {
  redisUrl: string;
  pid: number;
  metricsPort: number | null;
  iocPort?: number;
  prefix: string;
}

/** Writes the state file, readable by its owner only: it holds the private Redis's password. */
export function writeUpState(state: UpState): void {
  mkdirSync(path.dirname(stateFile()), { recursive: true, mode: 0o700 });
  rmSync(stateFile(), { force: true });
  writeFileSync(stateFile(), JSON.stringify(state, null, 2), { mode: 0o600 });
}

export function clearUpState(): void {
  rmSync(stateFile(), { force: true });
}

function readUpState(): UpState | null {
  try {
    const state = JSON.parse(readFileSync(stateFile(), 'utf8')) as UpState;
    process.kill(state.pid, 0);
    return state;
  } catch {
    return null;
  }
}

/** The config file: --config, else $PYEXEC_CONFIG, else ./config.yml if present, else defaults. */
export function resolveConfig(opts: GlobalOptions): Config {
  const file = opts.config ?? process.env['PYEXEC_CONFIG'] ?? (existsFile('config.yml') ? 'config.yml' : undefined);
  return loadConfig(file);
}

function existsFile(p: string): boolean {
  try {
    readFileSync(p);
    return true;
  } catch {
    return false;
  }
}

/** The Redis URL: --redis, else config / $PYEXEC_REDIS_URL, else a running `pyexec up`. */
export function resolveRedisUrl(opts: GlobalOptions, config: Config): string | undefined {
  const cluster = config.pyexec.redis.cluster;
  if (opts.redis !== undefined) {
    if (cluster) throw new ConfigError('--redis names one server, but pyexec.redis.cluster is set: give one of them');
    const problem = redisUrlProblem(opts.redis, '--redis');
    if (problem) throw configError([problem]);
    return opts.redis;
  }
  // A cluster's seed nodes, comma-separated: what logs and messages show (createRedis connects
  // to the cluster through pyexec.redis.cluster itself).
  if (cluster) return cluster.nodes.join(',');
  return config.pyexec.redis.url ?? readUpState()?.redisUrl;
}

export function requireRedisUrl(opts: GlobalOptions, config: Config): string {
  const url = resolveRedisUrl(opts, config);
  if (!url) {
    throw new ConfigError(
      'no Redis configured: pass --redis URL, set pyexec.redis.url or PYEXEC_REDIS_URL, or start `pyexec up` on this machine',
    );
  }
  return url;
}
