import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type ConfigProblem, configError, redisUrlProblem, schemaProblems } from './config-checks.js';
import { ConfigError } from './errors.js';
import { EXECUTION_MODES, ExecutionMethod, ExecutionMode } from './modes.js';

/**
 * One config.yml, parsed once. The keys of Osprey's python_executor configuration are accepted as
 * written in its documentation (optionally under a top-level `osprey:` key); the fleet's own
 * settings sit beside them under `pyexec:`. `${VAR}` and `${VAR:-default}` expand from the
 * environment. `z.input<typeof Config>` is what operators write, `Config` what the code receives.
 */

/** One execution mode; defaults differ per mode (see modeConfig below). */
const modeConfig = (defaults: { kernel_name: string; allows_writes: boolean; requires_approval: boolean }) =>
  z.strictObject({
    /** Jupyter kernelspec name for this mode. */
    kernel_name: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, 'a kernelspec name (letters, digits, . _ -)')
      .default(defaults.kernel_name),
    /** Whether code in this mode may write to the control system: must be false for read_only; false
     * for write_access refuses every write, as control_system.writes_enabled: false does. */
    allows_writes: z.boolean().default(defaults.allows_writes),
    /** Whether this mode always needs a person's approval (Osprey key; the approval section decides too). */
    requires_approval: z.boolean().default(defaults.requires_approval),
    /** Osprey: name of a gateway under `execution.epics.gateways`; sets this mode's EPICS_CA_ADDR_LIST,
     * EPICS_CA_SERVER_PORT and EPICS_CA_AUTO_ADDR_LIST=NO (over `environment`). */
    gateway: z.string().min(1).optional(),
    /** Extra environment for the kernel or subprocess of this mode. */
    environment: z.record(z.string(), z.string()).default({}),
    /** TCP ports this mode's kernels may connect to besides its Channel Access endpoints (an
     * archiver, a pvAccess gateway). Confinement allows nothing else. @defaultValue [] */
    connect_ports: z.array(z.number().int().min(1).max(65_535)).default([]),
  });

const PatternList = z.array(z.string()).default([]);
const PatternSet = z
  .strictObject({
    write: PatternList,
    read: PatternList,
    /** `extend` (default) adds to the built-in detection; `override` replaces it. */
    mode: z.enum(['extend', 'override']).default('extend'),
  })
  .superRefine((set, ctx) => {
    for (const key of ['write', 'read'] as const) {
      set[key].forEach((pattern, i) => {
        try {
          new RegExp(pattern);
        } catch (err) {
          ctx.addIssue({
            code: 'custom',
            path: [key, i],
            message: `invalid regex ${JSON.stringify(pattern)}: ${(err as Error).message}`,
          });
        }
      });
    }
  });

const LimitsConfig = z.strictObject({
  enabled: z.boolean().default(false),
  /** JSON file: per-channel {min_value, max_value, max_step, writable}, plus `defaults`. */
  database_path: z.string().optional(),
  allow_unlisted_channels: z.boolean().default(true),
  on_violation: z.enum(['error', 'skip']).default('error'),
});

const ApprovalMode = z
  .enum(['disabled', 'all_code', 'epics_writes', 'control_writes'])
  .transform((m) => (m === 'control_writes' ? 'epics_writes' : m));

const Stages = z.strictObject({
  generation: z.number().int().min(1).max(256).default(2),
  analysis: z.number().int().min(1).max(256).default(4),
  approval: z.number().int().min(1).max(256).default(4),
  execution: z.number().int().min(1).max(256).default(2),
  result: z.number().int().min(1).max(256).default(4),
});

/** A Jupyter server Osprey's way: `services.jupyter.containers.<name>` (per-mode containers). */
const OspreyJupyterContainer = z.looseObject({
  /** Host name of the container (Osprey: `hostname`). */
  hostname: z.string().min(1),
  /** The port the host reaches it on (Osprey: `port_host`). */
  port_host: z.number().int().min(1).max(65_535),
  /** Modes whose kernels it runs. @defaultValue both */
  execution_modes: z.array(ExecutionMode).min(1).optional(),
});

/** Osprey's registry as config: `registry.code_generators` (CodeGeneratorRegistration). */
const CodeGeneratorRegistration = z.strictObject({
  name: z.string().min(1),
  module_path: z.string().min(1),
  class_name: z.string().min(1).optional(),
  description: z.string().optional(),
});

/**
 * Top-level sections of an Osprey config.yml that pyexec does not read. They are accepted (an
 * Osprey config loads as written) and ignored; any other unknown key is an error.
 */
export const IGNORED_OSPREY_SECTIONS = [
  'file_paths',
  'langgraph',
  'agent_control_defaults',
  'execution_control',
  'project_root',
  'project_name',
  'registry_path',
  'build_dir',
  'development',
  'logging',
  'api',
  'system',
  'applications',
] as const;

export const Config = z.strictObject({
  ...Object.fromEntries(IGNORED_OSPREY_SECTIONS.map((k) => [k, z.unknown().optional()])),
  python_executor: z
    .strictObject({
      /** Code errors before execution (generation, syntax) allowed before the request fails. @defaultValue 3 */
      max_generation_retries: z.number().int().min(0).max(20).default(3),
      /** Code errors during execution allowed before the request fails. @defaultValue 3 */
      max_execution_retries: z.number().int().min(0).max(20).default(3),
      /** Wall time of one run. @defaultValue 600 */
      execution_timeout_seconds: z.number().positive().max(86_400).default(600),
    })
    .prefault({}),
  execution: z
    .strictObject({
      /** basic | claude_code | mock | hybrid | legacy (Osprey's deprecated name of basic) | a custom name. @defaultValue "mock" */
      code_generator: z.string().default('mock'),
      /** Per-generator settings, passed to the generator as its model config. */
      generators: z.record(z.string(), z.record(z.string(), z.unknown()).nullable()).default({}),
      /** container (Jupyter kernels) or local (a Python subprocess; trusted use only). @defaultValue "container" */
      execution_method: ExecutionMethod.default('container'),
      /**
       * How kernels and local runs are confined (docs/security.md). `landlock`: each kernel confines
       * itself with Linux Landlock (ABI >= 6) before any user code, and refuses to start where it
       * cannot. `deployment`: the deployment isolates kernels itself (containers that reach only a
       * CA gateway per mode, network policies); pyexec applies nothing and says so loudly.
       * Env PYEXEC_CONFINEMENT. @defaultValue "landlock"
       */
      confinement: z.enum(['landlock', 'deployment']).default('landlock'),
      /** Whether a request may override the execution method. @defaultValue false */
      allow_method_override: z.boolean().default(false),
      python_env_path: z.string().optional(),
      modes: z
        .strictObject({
          read_only: modeConfig({
            kernel_name: 'python3-epics-readonly',
            allows_writes: false,
            requires_approval: false,
          }).prefault({}),
          write_access: modeConfig({
            kernel_name: 'python3-epics-write',
            allows_writes: true,
            requires_approval: true,
          }).prefault({}),
        })
        .prefault({}),
      container: z
        .strictObject({
          /** Osprey: an existing Jupyter server (container) for both modes; the fleet uses it and
           * starts none of its own. Unset: `pool.servers`, or servers pyexec spawns. */
          jupyter_host: z.string().min(1).optional(),
          /** Osprey: the port of `jupyter_host`. @defaultValue 8888 */
          jupyter_port: z.number().int().min(1).max(65_535).optional(),
          /** pyexec: the token of the `jupyter_host` server (`${JUPYTER_TOKEN}`). @defaultValue "" */
          jupyter_token: z.string().optional(),
          /** pyexec's kernel pool (src/executors/pool-config.ts checks it). */
          pool: z.unknown().optional(),
          /**
           * Where people open notebooks: the JupyterLab URL of `pyexec.execution_root`, e.g.
           * `http://jupyter.example:8888/lab/tree/executions`. A response's `notebook_link` is this
           * plus the notebook's path under the execution root. Unset: `notebook_link` is null.
           */
          notebook_base_url: z.url({ protocol: /^https?$/ }).optional(),
        })
        .prefault({}),
      local: z.strictObject({ python_env_path: z.string().optional() }).prefault({}),
      epics: z
        .strictObject({
          timeout: z.number().positive().default(5),
          /** Osprey: Channel Access gateways by name, chosen per mode by `modes.<mode>.gateway`. */
          gateways: z
            .record(
              z.string(),
              z.strictObject({
                /** Host (or list of hosts) of the gateway: EPICS_CA_ADDR_LIST. */
                address: z.string().min(1),
                /** Its Channel Access server port: EPICS_CA_SERVER_PORT. @defaultValue 5064 */
                port: z.number().int().min(1).max(65_535).default(5064),
              }),
            )
            .default({}),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Osprey's `services` section: only `services.jupyter.containers` is read (per-mode Jupyter containers). */
  services: z
    .looseObject({
      jupyter: z.looseObject({ containers: z.record(z.string(), OspreyJupyterContainer).optional() }).optional(),
    })
    .optional(),
  /** Osprey's registry as config: custom generators by name, module and class. */
  registry: z.strictObject({ code_generators: z.array(CodeGeneratorRegistration).default([]) }).optional(),
  approval: z
    .strictObject({
      global_mode: z.enum(['disabled', 'selective', 'all_capabilities']).default('selective'),
      capabilities: z
        .object({
          /** A missing section means all code needs approval (fail closed). */
          python_execution: z
            .strictObject({ enabled: z.boolean().default(true), mode: ApprovalMode.default('all_code') })
            .prefault({ enabled: true, mode: 'all_code' }),
        })
        .loose()
        .prefault({}),
    })
    .prefault({}),
  control_system: z
    .strictObject({
      type: z.string().default('epics'),
      /** Whether any code may write to the control system. @defaultValue false */
      writes_enabled: z.boolean().default(false),
      patterns: z.record(z.string(), PatternSet).default({}),
      limits_checking: LimitsConfig.prefault({}),
      /** Archivers the code may fetch from over HTTP without the analysis counting it as a possible
       * write (URL prefixes, e.g. http://archiver:17665). Any other network access is one. @defaultValue [] */
      archivers: z.array(z.url({ protocol: /^https?$/ })).default([]),
      /** Osprey sections pyexec does not read (write verification, connector settings). */
      write_verification: z.unknown().optional(),
      connector: z.unknown().optional(),
    })
    .prefault({}),
  models: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  pyexec: z
    .strictObject({
      redis: z
        .strictObject({
          /** Redis URL (redis:// or rediss://). Unset: `pyexec up` starts a private redis-server. Env PYEXEC_REDIS_URL. */
          url: z.string().optional(),
          /** A Redis Cluster instead of one server (not with `url`): its seed nodes, redis:// or
           * rediss:// URLs (the first one's user, password and TLS serve every node). Every key of
           * the fleet is in one hash slot (the prefix's tag): a cluster gives failover, not sharding. */
          cluster: z
            .strictObject({
              nodes: z.array(z.string()).min(1),
            })
            .optional(),
          /** Key prefix; wrapped in {braces} so every key of the fleet hashes to one Cluster slot. */
          prefix: z
            .string()
            .regex(/^[A-Za-z0-9_-]+$/)
            .default('pyexec'),
        })
        .prefault({}),
      concurrency: Stages.prefault({}),
      /** Where execution folders are made. Env PYEXEC_EXECUTION_ROOT. @defaultValue "./var/executions" */
      execution_root: z.string().default('./var/executions'),
      /** The project's Python (a virtualenv with the kernel packages). @defaultValue ".venv/bin/python" */
      python: z.string().default('.venv/bin/python'),
      /** Port of each process's /metrics, /healthz and /readyz (0: any free port; null: no such server).
       * Env PYEXEC_METRICS_PORT (`off` for null); `--metrics-port` of up, worker and exporter. @defaultValue 9464 */
      metrics_port: z.number().int().min(0).max(65_535).nullable().default(9464),
      /** Interface the metrics server binds: loopback unless Prometheus scrapes from another host
       * (containers: 0.0.0.0). Env PYEXEC_METRICS_HOST; `--metrics-host`. @defaultValue "127.0.0.1" */
      metrics_host: z.string().min(1).default('127.0.0.1'),
      approval: z
        .strictObject({
          /** How long a held job waits for a decision. @defaultValue 3600 */
          default_timeout_seconds: z.number().int().positive().default(3600),
          /** The longest deadline a request may ask for. @defaultValue 86400 */
          max_timeout_seconds: z.number().int().positive().default(86_400),
        })
        .prefault({}),
      approver: z
        .strictObject({
          /** Port of the approver HTTP API and web page (0: any free port; null: `pyexec up` starts no
           * approver API). Env PYEXEC_APPROVER_PORT (`off` for null); `up --approver-port`. @defaultValue 8470 */
          port: z.number().int().min(0).max(65_535).nullable().default(8470),
          /** Interface the approver API binds. Env PYEXEC_APPROVER_HOST; `up --approver-host`. @defaultValue "127.0.0.1" */
          host: z.string().min(1).default('127.0.0.1'),
          /** Bearer tokens, stored as sha256 hex digests (never in clear), with a role each. */
          tokens: z
            .array(
              z.strictObject({
                name: z.string().min(1),
                token_sha256: z
                  .string()
                  .regex(/^[0-9a-f]{64}$/, 'expected a sha256 hex digest (64 lowercase hex chars)'),
                /** viewer: reads held jobs; approver: reads and decides; producer: the producer API
                 * only (submit, follow, cancel its own requests). */
                role: z.enum(['viewer', 'approver', 'producer']),
              }),
            )
            .default([]),
        })
        .prefault({}),
      /**
       * The producer HTTP API (src/api/): submit, get, wait, events, cancel, list, and its OpenAPI
       * document. Its own server (not the approver's): see docs/producers.md. Tokens are
       * `pyexec.approver.tokens` entries with role `producer` (and viewer/approver to read).
       */
      api: z
        .strictObject({
          /** Port (0: any free port; null: `pyexec up` starts no producer API). Env PYEXEC_API_PORT
           * (`off` for null); `up --api-port`, `api serve --port`. @defaultValue 8471 */
          port: z.number().int().min(0).max(65_535).nullable().default(8471),
          /** Interface it binds. Env PYEXEC_API_HOST; `up --api-host`. @defaultValue "127.0.0.1" */
          host: z.string().min(1).default('127.0.0.1'),
          /** Largest request body, in bytes (413 over it). @defaultValue 1048576 */
          body_limit_bytes: z
            .number()
            .int()
            .min(1024)
            .max(64 * 1024 * 1024)
            .default(1_048_576),
          /** Calls per token (per address without one) per window (429 over it). @defaultValue 600 */
          rate_limit_max: z.number().int().min(1).default(600),
          /** The rate limit's window. @defaultValue 60000 */
          rate_limit_window_ms: z.number().int().min(100).default(60_000),
          /** Longest long-poll of `wait`. @defaultValue 60 */
          max_wait_seconds: z.number().int().min(1).max(600).default(60),
          /** Open event streams (SSE) and waits per process; more are refused (503). @defaultValue 500 */
          max_streams: z.number().int().min(1).default(500),
          /** Keep-alive comment interval of event streams. @defaultValue 15000 */
          keep_alive_ms: z.number().int().min(100).default(15_000),
        })
        .prefault({}),
      /** Limits a request must meet before anything is written to Redis (the client refuses it otherwise). */
      request_limits: z
        .object({
          /** Size of the request as JSON, in bytes. @defaultValue 1048576 (1 MiB) */
          max_bytes: z
            .number()
            .int()
            .positive()
            .max(64 * 1024 * 1024)
            .default(1_048_576),
          /** Nesting of objects and arrays (the kernel must decode it: 256 at most). @defaultValue 64 */
          max_depth: z.number().int().min(2).max(256).default(64),
          /** Object keys and array items, counted over the whole request. @defaultValue 100000 */
          max_keys: z.number().int().positive().default(100_000),
        })
        .prefault({}),
      /** Output kept per stream, in bytes; longer output is cut with a marker. @defaultValue 1000000 */
      max_output_bytes: z.number().int().positive().default(1_000_000),
      /**
       * Live output (stdout, stderr, displayed figures) on the request's event stream while the code
       * runs, coalesced and bounded per request (src/workers/live-output.ts); past a bound, one
       * `output_dropped` marker and a count. The response always carries the output it kept.
       */
      live_output: z
        .strictObject({
          /** Send live output at all. @defaultValue true */
          enabled: z.boolean().default(true),
          /** Output is gathered this long before it is sent as one event per stream. @defaultValue 150 */
          flush_ms: z.number().int().min(10).max(10_000).default(150),
          /** Bytes of live output per request (text, and figures as sent), over every attempt. @defaultValue 2000000 */
          max_bytes: z.number().int().min(1024).default(2_000_000),
          /** Output events per request, over every attempt (at most 900: the request's event stream
           * keeps its last ~1000 entries, and a follower from the start must miss nothing). @defaultValue 500 */
          max_events: z.number().int().min(10).max(900).default(500),
        })
        .prefault({}),
      /**
       * OpenTelemetry tracing (src/telemetry/): one trace per request across stages and processes,
       * exported over OTLP/HTTP. Off unless an endpoint is set here or in OTEL_EXPORTER_OTLP_ENDPOINT
       * (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); OTEL_SDK_DISABLED=true turns it off.
       */
      telemetry: z
        .strictObject({
          /** OTLP/HTTP endpoint, e.g. `http://otel-collector:4318` (`/v1/traces` is appended). */
          otlp_endpoint: z
            .url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL (OTLP/HTTP)' })
            .optional(),
          /** service.name of the spans. @defaultValue OTEL_SERVICE_NAME, else "pyexec" */
          service_name: z.string().min(1).optional(),
          /** Share of new traces recorded (a stage continuing a trace follows its parent). @defaultValue 1 */
          sample_ratio: z.number().min(0).max(1).default(1),
        })
        .prefault({}),
      retention: z
        .strictObject({
          /** How long finished requests, their records and jobs are kept. @defaultValue 604800 (7 days) */
          finished_seconds: z.number().int().positive().default(604_800),
          /** How often result workers remove execution folders past retention (on disk, as Redis
           * expires the records). @defaultValue 600000 (10 minutes) */
          prune_interval_ms: z.number().int().min(100).default(600_000),
        })
        .prefault({}),
      /** Folder of the config file; relative paths in the config (custom generator modules, limits
       * database) resolve against it. Set by loadConfig. @defaultValue the working directory */
      config_dir: z.string().default(() => process.cwd()),
      /** How worker processes announce themselves to `pyexec status` (src/ops/fleet-presence.ts). */
      presence: z
        .strictObject({
          /** Time between two heartbeats of a worker process. @defaultValue 10000 */
          heartbeat_ms: z.number().int().min(50).default(10_000),
          /** A process that stopped beating (it died) leaves `pyexec status` this long after its last beat. @defaultValue 30000 */
          ttl_ms: z.number().int().min(100).default(30_000),
        })
        .refine((p) => p.ttl_ms >= 2 * p.heartbeat_ms, {
          message: 'ttl_ms must be at least twice heartbeat_ms (one late beat must not drop a live worker)',
          path: ['ttl_ms'],
        })
        .prefault({}),
      /** SIGTERM: time given to in-flight jobs before a forced close. @defaultValue 30000 */
      shutdown_grace_ms: z.number().int().min(0).default(30_000),
      /** BullMQ lock duration of a running job; a worker that stops renewing it for this long is
       * considered dead. @defaultValue 30000 */
      lock_duration_ms: z.number().int().min(500).default(30_000),
      /** How often workers look for stalled jobs. @defaultValue 30000 */
      stalled_interval_ms: z.number().int().min(500).default(30_000),
      /** BullMQ attempts for infrastructure errors in one stage. @defaultValue 3 */
      infra_attempts: z.number().int().min(1).max(20).default(3),
      /** Base backoff of infrastructure retries. @defaultValue 1000 */
      infra_backoff_ms: z.number().int().min(0).default(1000),
      /** How often each process sweeps the failed jobs of every stage for requests still open
       * (it also sweeps at start-up, before its workers take jobs). @defaultValue 30000 */
      sweep_interval_ms: z.number().int().min(100).default(30_000),
      /** How often a job that stopped with its worker (killed, lost its lock) is run again, as a
       * new job, before its request fails; write-capable executions never are. @defaultValue 2 */
      max_requeues: z.number().int().min(0).max(10).default(2),
    })
    .prefault({}),
});
export type Config = z.output<typeof Config>;
export type ConfigInput = z.input<typeof Config>;

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Expands `${VAR}` / `${VAR:-default}` in every string of a parsed YAML document. */
export function expandEnv(value: unknown, env: NodeJS.ProcessEnv = process.env): unknown {
  if (typeof value === 'string') {
    const expanded = value.replace(VAR, (_m, name: string, def?: string) => env[name] ?? def ?? '');
    // A value that is one whole `${VAR}` takes the YAML type of what it expands to (a port stays a number).
    if (expanded !== value && /^\$\{[^}]+\}$/.test(value) && expanded !== '') {
      const typed: unknown = parseYaml(expanded);
      if (typeof typed === 'number' || typeof typed === 'boolean' || typed === null) return typed;
    }
    return expanded;
  }
  if (Array.isArray(value)) return value.map((v) => expandEnv(v, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, env)]));
  }
  return value;
}

/** Drops empty strings that came from unset variables, so optional keys stay unset. */
function dropEmpty(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropEmpty);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== '')
        .map(([k, v]) => [k, dropEmpty(v)]),
    );
  }
  return value;
}

/** Parses a config document (already YAML-decoded). Throws ConfigError naming each bad key. */
export function parseConfig(doc: unknown, env: NodeJS.ProcessEnv = process.env): Config {
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError('config: the document must be a mapping');
  let root = doc as Record<string, unknown>;
  if (root['osprey'] !== undefined) {
    const { osprey, ...rest } = root;
    if (!osprey || typeof osprey !== 'object') throw new ConfigError('config: `osprey` must be a mapping');
    root = { ...(osprey as Record<string, unknown>), ...rest };
  }
  const expanded = dropEmpty(expandEnv(root, env)) as Record<string, unknown>;
  const parsed = Config.safeParse(expanded);
  if (!parsed.success) throw configError(schemaProblems(Config, parsed.error));
  const config = applyEnvOverrides(parsed.data, env);
  const problems = combinationProblems(config);
  if (problems.length > 0) throw configError(problems);
  return applyRegistry(config);
}

/** Osprey's `registry.code_generators` become `execution.generators.<name>` registrations (module and class). */
function applyRegistry(config: Config): Config {
  for (const reg of config.registry?.code_generators ?? []) {
    const settings = config.execution.generators[reg.name] ?? {};
    config.execution.generators[reg.name] = {
      ...settings,
      module_path: reg.module_path,
      ...(reg.class_name !== undefined && settings['export'] === undefined ? { class_name: reg.class_name } : {}),
    };
  }
  return config;
}

/** A port from the environment; `off` (or `null`) turns the server off. */
function envPort(env: NodeJS.ProcessEnv, name: string): number | null {
  if (env[name] === 'off' || env[name] === 'null') return null;
  const port = Number(env[name]);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(`${name}: expected a port number (0-65535) or off, got ${JSON.stringify(env[name])}`);
  }
  return port;
}

/**
 * `PYEXEC_APPROVER_TOKENS`: approver tokens from a secret, `name:role:sha256` entries separated by
 * commas, spaces or newlines (`pyexec approver new-token` prints the sha256). Added to the config's.
 */
function envTokens(value: string): Config['pyexec']['approver']['tokens'] {
  return value
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((entry, i) => {
      const [name, role, sha] = entry.split(':');
      if (
        !name ||
        (role !== 'viewer' && role !== 'approver' && role !== 'producer') ||
        !sha ||
        !/^[0-9a-f]{64}$/.test(sha)
      ) {
        throw new ConfigError(
          `PYEXEC_APPROVER_TOKENS: entry ${i + 1} is not name:role:sha256 (role viewer, approver or producer, the token's sha256 in lowercase hex)`,
        );
      }
      return { name, role, token_sha256: sha };
    });
}

/** The environment overrides, in one place. */
function applyEnvOverrides(config: Config, env: NodeJS.ProcessEnv): Config {
  const p = config.pyexec;
  if (env['PYEXEC_REDIS_URL']) p.redis.url = env['PYEXEC_REDIS_URL'];
  const clusterNodes = env['PYEXEC_REDIS_CLUSTER_NODES']
    ?.split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  if (clusterNodes?.length) p.redis.cluster = { nodes: clusterNodes };
  if (env['PYEXEC_EXECUTION_ROOT']) p.execution_root = env['PYEXEC_EXECUTION_ROOT'];
  if (env['PYEXEC_CONFINEMENT']) {
    const method = env['PYEXEC_CONFINEMENT'];
    if (method !== 'landlock' && method !== 'deployment')
      throw new ConfigError(`PYEXEC_CONFINEMENT: expected landlock or deployment, got ${JSON.stringify(method)}`);
    config.execution.confinement = method;
  }
  if (env['PYEXEC_APPROVER_PORT']) p.approver.port = envPort(env, 'PYEXEC_APPROVER_PORT');
  if (env['PYEXEC_METRICS_PORT']) p.metrics_port = envPort(env, 'PYEXEC_METRICS_PORT');
  if (env['PYEXEC_METRICS_HOST']) p.metrics_host = env['PYEXEC_METRICS_HOST'];
  if (env['PYEXEC_APPROVER_HOST']) p.approver.host = env['PYEXEC_APPROVER_HOST'];
  if (env['PYEXEC_API_PORT']) p.api.port = envPort(env, 'PYEXEC_API_PORT');
  if (env['PYEXEC_API_HOST']) p.api.host = env['PYEXEC_API_HOST'];
  if (env['PYEXEC_APPROVER_TOKENS']) p.approver.tokens.push(...envTokens(env['PYEXEC_APPROVER_TOKENS']));
  return config;
}

/** Reads and parses a config file; relative paths in the fleet settings resolve against its folder. */
export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  if (!file) return parseConfig({}, env);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`config: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config: ${file} is not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const config = parseConfig(doc, env);
  const base = path.dirname(path.resolve(file));
  config.pyexec.execution_root = path.resolve(base, config.pyexec.execution_root);
  config.pyexec.config_dir = base;
  return config;
}

/** The combinations pyexec refuses (each problem names the key and says why). */
export function combinationProblems(config: Config): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const { modes, epics, container } = config.execution;
  if (modes.read_only.allows_writes) {
    out.push({
      path: 'execution.modes.read_only.allows_writes',
      message:
        'must be false: read-only code never writes (its kernel refuses writes at run time); code that writes runs in write_access',
    });
  }
  if (modes.read_only.kernel_name === modes.write_access.kernel_name) {
    out.push({
      path: 'execution.modes.read_only.kernel_name',
      message: `'${modes.read_only.kernel_name}' is also the write_access kernel: read-only code would run in a kernel that may write; give each mode its own kernel`,
    });
  }
  for (const mode of EXECUTION_MODES) {
    const gateway = modes[mode].gateway;
    if (gateway !== undefined && !(gateway in epics.gateways)) {
      const known = Object.keys(epics.gateways);
      out.push({
        path: `execution.modes.${mode}.gateway`,
        message: `no gateway '${gateway}' under execution.epics.gateways (${known.length ? `known: ${known.join(', ')}` : 'none is defined'})`,
      });
    }
  }
  const url = config.pyexec.redis.url;
  const urlProblem = url === undefined ? undefined : redisUrlProblem(url, 'pyexec.redis.url (or PYEXEC_REDIS_URL)');
  if (urlProblem) out.push(urlProblem);
  const cluster = config.pyexec.redis.cluster;
  if (cluster && url !== undefined) {
    out.push({
      path: 'pyexec.redis.cluster',
      message: 'give pyexec.redis.url (one server) or pyexec.redis.cluster, not both',
    });
  }
  cluster?.nodes.forEach((node, i) => {
    const problem = redisUrlProblem(node, `pyexec.redis.cluster.nodes[${i}]`);
    if (problem) out.push(problem);
  });
  const pool = container.pool as { servers?: unknown[] } | undefined;
  const listed = Array.isArray(pool?.servers) && pool.servers.length > 0;
  const containers = Object.keys(config.services?.jupyter?.containers ?? {});
  if (container.jupyter_port !== undefined && container.jupyter_host === undefined) {
    out.push({ path: 'execution.container.jupyter_port', message: 'needs execution.container.jupyter_host' });
  }
  const ways = [
    container.jupyter_host !== undefined && 'execution.container.jupyter_host',
    containers.length > 0 && 'services.jupyter.containers',
    listed && 'execution.container.pool.servers',
  ].filter((w): w is string => Boolean(w));
  if (ways.length > 1) {
    out.push({
      path: ways[0]!,
      message: `the Jupyter servers are given twice (${ways.join(' and ')}); keep one`,
    });
  }
  const names = new Set<string>();
  for (const [i, reg] of (config.registry?.code_generators ?? []).entries()) {
    if (names.has(reg.name)) {
      out.push({ path: `registry.code_generators.${i}.name`, message: `generator '${reg.name}' is registered twice` });
    }
    names.add(reg.name);
    const settings = config.execution.generators[reg.name];
    const own = settings?.['module_path'];
    if (own !== undefined && own !== reg.module_path) {
      out.push({
        path: `execution.generators.${reg.name}.module_path`,
        message: `'${String(own)}' differs from registry.code_generators.${i}.module_path '${reg.module_path}'`,
      });
    }
  }
  return out;
}
