import { z } from 'zod';
import type { Config } from '../config.js';
import { configError, schemaProblems } from '../config-checks.js';
import { ConfigError } from '../errors.js';
import { EXECUTION_MODES, ExecutionMode } from '../modes.js';

/** A Jupyter server that pyexec does not start: a container in docker-compose or Kubernetes. */
const ServerEntry = z.strictObject({
  /** Base URL, e.g. http://jupyter-read:8888/ (a base path is kept). */
  url: z.url({ protocol: /^https?$/ }),
  /** The server's token (IdentityProvider.token); `${VAR}` in config.yml keeps it out of the file. */
  token: z.string().default(''),
  /** Execution modes whose kernels this server runs. @defaultValue both */
  modes: z
    .array(ExecutionMode)
    .min(1)
    .default([...EXECUTION_MODES]),
  /** A short name for logs and metrics. @defaultValue the URL */
  name: z.string().min(1).optional(),
});

/**
 * `execution.container.pool`: the Jupyter kernel pool of the `container` execution method.
 * With no `servers`, each execution worker process starts `spawn.count` Jupyter servers per mode
 * on loopback (the single-machine mode); with servers listed, every worker shares them.
 */
export const KernelPoolSettings = z.strictObject({
  servers: z.array(ServerEntry).default([]),
  spawn: z
    .strictObject({
      /** Jupyter servers a process starts per mode when no servers are listed. @defaultValue 1 */
      count: z.number().int().min(1).max(16).default(1),
      /** Time a spawned server has to answer. @defaultValue 60000 */
      startup_timeout_ms: z.number().int().min(1000).default(60_000),
      /** Modes the spawned servers serve. @defaultValue both */
      modes: z
        .array(ExecutionMode)
        .min(1)
        .default([...EXECUTION_MODES]),
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

/**
 * Reads and validates `execution.container.pool`; throws ConfigError naming the key. Osprey's ways of
 * naming existing Jupyter servers become `servers` entries, so the fleet uses them and spawns none:
 * `execution.container.jupyter_host` / `jupyter_port` (one server for both modes) and
 * `services.jupyter.containers.<name>` (`hostname`, `port_host`, `execution_modes`: a server per mode).
 */
export function kernelPoolSettings(config: Config): KernelPoolSettings {
  const raw = config.execution.container.pool ?? {};
  const parsed = KernelPoolSettings.safeParse(raw);
  if (!parsed.success) {
    const prefix = ['execution', 'container', 'pool'];
    throw configError(
      schemaProblems(KernelPoolSettings, parsed.error).map((p) => ({
        ...p,
        path: [...prefix, p.path].filter(Boolean).join('.'),
      })),
    );
  }
  const settings = parsed.data;
  if (settings.servers.length === 0) settings.servers = ospreyServers(config);
  const names = new Set<string>();
  for (const s of settings.servers) {
    const name = s.name ?? s.url;
    if (names.has(name))
      throw new ConfigError(`execution.container.pool.servers: duplicate server ${JSON.stringify(name)}`);
    names.add(name);
  }
  return settings;
}

const hostPart = (host: string) => (host.includes(':') && !host.startsWith('[') ? `[${host}]` : host);

/** Osprey's existing Jupyter servers as pool entries (none when neither key is set). */
function ospreyServers(config: Config): KernelPoolSettings['servers'] {
  const { jupyter_host: host, jupyter_port: port, jupyter_token: token = '' } = config.execution.container;
  if (host !== undefined) {
    const p = port ?? 8888;
    return [{ name: `${host}:${p}`, url: `http://${hostPart(host)}:${p}/`, token, modes: [...EXECUTION_MODES] }];
  }
  return Object.entries(config.services?.jupyter?.containers ?? {}).map(([name, c]) => ({
    name,
    url: `http://${hostPart(c.hostname)}:${c.port_host}/`,
    token,
    modes: c.execution_modes ?? [...EXECUTION_MODES],
  }));
}

/** What a kernelspec of one mode needs: its name (execution.modes.<mode>.kernel_name) and environment. */
export type KernelModes = Record<ExecutionMode, { kernel_name: string; environment: Record<string, string> }>;

/**
 * Kernel name and environment per mode. A mode that names an Osprey gateway
 * (`modes.<mode>.gateway` → `execution.epics.gateways.<name>`) reaches EPICS through it alone:
 * EPICS_CA_ADDR_LIST, EPICS_CA_SERVER_PORT and EPICS_CA_AUTO_ADDR_LIST=NO, over the mode's
 * `environment`. (Kernels of servers pyexec does not start have their own kernelspecs' environment.)
 */
export function kernelModes(config: Config): KernelModes {
  const m = config.execution.modes;
  const env = (mode: ExecutionMode): Record<string, string> => {
    const name = m[mode].gateway;
    const gateway = name === undefined ? undefined : config.execution.epics.gateways[name];
    if (name !== undefined && !gateway)
      throw new ConfigError(`execution.modes.${mode}.gateway: no gateway '${name}' under execution.epics.gateways`);
    return {
      ...m[mode].environment,
      ...(gateway
        ? {
            EPICS_CA_ADDR_LIST: gateway.address,
            EPICS_CA_SERVER_PORT: String(gateway.port),
            EPICS_CA_AUTO_ADDR_LIST: 'NO',
          }
        : {}),
      // Ports the confined kernel may connect to besides its Channel Access endpoints (confine.py).
      ...(m[mode].connect_ports.length > 0 ? { PYEXEC_CONNECT_PORTS: m[mode].connect_ports.join(',') } : {}),
    };
  };
  return {
    read_only: { kernel_name: m.read_only.kernel_name, environment: env('read_only') },
    write_access: { kernel_name: m.write_access.kernel_name, environment: env('write_access') },
  };
}
