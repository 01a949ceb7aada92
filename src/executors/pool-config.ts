import { z } from 'zod';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { ExecutionMode } from './executor.js';

const Mode = z.enum(['read_only', 'write_access']);

/** A Jupyter server that pyexec does not start: a container in docker-compose or Kubernetes. */
const ServerEntry = z.object({
  /** Base URL, e.g. http://jupyter-read:8888/ (a base path is kept). */
  url: z.url({ protocol: /^https?$/ }),
  /** The server's token (IdentityProvider.token); `${VAR}` in config.yml keeps it out of the file. */
  token: z.string().default(''),
  /** Execution modes whose kernels this server runs. @defaultValue both */
  modes: z.array(Mode).min(1).default(['read_only', 'write_access']),
  /** A short name for logs and metrics. @defaultValue the URL */
  name: z.string().min(1).optional(),
});

/**
 * `execution.container.pool`: the Jupyter kernel pool of the `container` execution method.
 * With no `servers`, each execution worker process starts `spawn.count` Jupyter servers per mode
 * on loopback (the single-machine mode); with servers listed, every worker shares them.
 */
export const KernelPoolSettings = z.object({
  servers: z.array(ServerEntry).default([]),
  spawn: z
    .object({
      /** Jupyter servers a process starts per mode when no servers are listed. @defaultValue 1 */
      count: z.number().int().min(1).max(16).default(1),
      /** Time a spawned server has to answer. @defaultValue 60000 */
      startup_timeout_ms: z.number().int().min(1000).default(60_000),
      /** Modes the spawned servers serve. @defaultValue both */
      modes: z.array(Mode).min(1).default(['read_only', 'write_access']),
    })
    .prefault({}),
  /** Warm kernels kept per mode on each server (the pool's capacity per server and mode). @defaultValue 2 */
  spares_per_mode: z.number().int().min(1).max(64).default(2),
  /** A lease not renewed for this long is expired: its kernel is reset and reused. @defaultValue 30000 */
  lease_ttl_ms: z.number().int().min(1000).default(30_000),
  /** How long a request waits for a free kernel before failing as an infrastructure error. @defaultValue 30000 */
  lease_wait_ms: z.number().int().min(0).default(30_000),
  /** Time a kernel has to start or restart. @defaultValue 60000 */
  kernel_start_timeout_ms: z.number().int().min(1000).default(60_000),
  /** After a timeout's interrupt, how long the kernel has to come back idle. @defaultValue 3000 */
  interrupt_grace_ms: z.number().int().min(100).default(3000),
  /** How long a server that stopped answering is skipped. @defaultValue 10000 */
  server_down_ms: z.number().int().min(100).default(10_000),
  /** How often each process looks for expired leases and missing kernels. @defaultValue 5000 */
  reap_interval_ms: z.number().int().min(100).default(5000),
});
export type KernelPoolSettings = z.output<typeof KernelPoolSettings>;
export type KernelPoolSettingsInput = z.input<typeof KernelPoolSettings>;

/** Reads and validates `execution.container.pool`; throws ConfigError naming the key. */
export function kernelPoolSettings(config: Config): KernelPoolSettings {
  const raw = (config.execution.container as Record<string, unknown>)['pool'] ?? {};
  const parsed = KernelPoolSettings.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map(
      (i) => `  ✖ ${i.message}\n    → at execution.container.pool.${i.path.join('.')}`,
    );
    throw new ConfigError(`invalid configuration:\n${issues.join('\n')}`);
  }
  const names = new Set<string>();
  for (const s of parsed.data.servers) {
    const name = s.name ?? s.url;
    if (names.has(name))
      throw new ConfigError(`execution.container.pool.servers: duplicate server ${JSON.stringify(name)}`);
    names.add(name);
  }
  return parsed.data;
}

/** What a kernelspec of one mode needs: its name (execution.modes.<mode>.kernel_name) and environment. */
export type KernelModes = Record<ExecutionMode, { kernel_name: string; environment: Record<string, string> }>;

export function kernelModes(config: Config): KernelModes {
  const m = config.execution.modes;
  const one = (mode: ExecutionMode) => {
    const environment = { ...m[mode].environment };
    // Ports the confined kernel may connect to besides its Channel Access endpoints (confine.py).
    if (m[mode].connect_ports.length > 0) environment['PYEXEC_CONNECT_PORTS'] = m[mode].connect_ports.join(',');
    return { kernel_name: m[mode].kernel_name, environment };
  };
  return { read_only: one('read_only'), write_access: one('write_access') };
}
