import type { ProducerApi } from '../api/producer-server.js';
import { type ApproverApi, startApproverApi } from '../approval/index.js';
import type { Config } from '../config.js';
import { type SoftIoc, startSoftIoc } from '../epics/soft-ioc.js';
import type { CodeGenerator } from '../generators/code-generator.js';
import { urlHost } from '../http/url-host.js';
import type { Logger } from '../logger.js';
import { EXECUTION_MODES } from '../modes.js';
import { preflight } from '../ops/preflight.js';
import type { Stage } from '../queues/envelope.js';
import { redactUrl } from '../redis/connection.js';
import { type LocalRedis, startLocalRedis } from '../redis/redis-server.js';
import { Fleet } from '../workers/fleet.js';
import { clearUpState, type GlobalOptions, resolveRedisUrl, writeUpState } from './context.js';
import { onShutdown } from './shutdown.js';

export { onShutdown };

export interface LocalStack {
  readonly fleet: Fleet;
  readonly redisUrl: string;
  readonly redis?: LocalRedis;
  readonly ioc?: SoftIoc;
  readonly approver?: ApproverApi;
  /** The producer HTTP API (pyexec.api.port). */
  readonly api?: ProducerApi;
  close(graceMs?: number): Promise<void>;
}

/** Thrown by startLocalStack when its signal aborts the start-up (what had started is stopped). */
class StartupAborted extends Error {}

/**
 * Everything on one machine: a private redis-server when none is configured, the simulated
 * accelerator (soft IOC) unless disabled, and workers for the chosen stages in this process.
 */
export async function startLocalStack(
  opts: GlobalOptions & {
    ioc?: boolean;
    stages?: Stage[];
    metricsPort?: number | null;
    approverPort?: number | null;
    apiPort?: number | null;
    /** Replaces the configured generator (the demo's canned programs). */
    generator?: CodeGenerator;
    /** Aborted by a signal during start-up: what has started is stopped, and the promise rejects. */
    signal?: AbortSignal;
  },
  config: Config,
  logger: Logger,
): Promise<LocalStack> {
  // Every check first: a bad config stops here, before any child process starts.
  const { generator } = await preflight(config, {
    logger,
    ...(opts.stages ? { stages: opts.stages } : {}),
    ...(opts.generator ? { generator: opts.generator } : {}),
  });
  const interrupted = () => {
    if (opts.signal?.aborted) throw new StartupAborted('start-up interrupted by a signal');
  };
  let redis: LocalRedis | undefined;
  let redisUrl = resolveRedisUrl(opts, config);
  if (!redisUrl) {
    redis = await startLocalRedis({ appendOnly: false });
    redisUrl = redis.url;
    logger.info(
      { redisUrl: redis.safeUrl },
      'started a private redis-server with a random password (no Redis configured)',
    );
  }
  let ioc: SoftIoc | undefined;
  let fleet: Fleet | undefined;
  let approver: ApproverApi | undefined;
  let api: ProducerApi | undefined;
  try {
    interrupted();
    if (opts.ioc !== false) {
      ioc = await startSoftIoc({ python: config.pyexec.python, readOnlyEndpoint: true });
      // Read-only code talks to the IOC's read-only endpoint (writes refused at the IOC as well as
      // by the in-process guard); write-capable code to the read-write one.
      const endpoints = { read_only: ioc.readOnlyEnv ?? ioc.env, write_access: ioc.env };
      for (const mode of EXECUTION_MODES) {
        config.execution.modes[mode].environment = { ...endpoints[mode], ...config.execution.modes[mode].environment };
      }
      logger.info({ port: ioc.port }, 'started the simulated accelerator (soft IOC)');
    }
    interrupted();
    fleet = await Fleet.start({
      config,
      redisUrl,
      logger,
      ...(opts.stages ? { stages: opts.stages } : {}),
      ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
      ...(generator ? { generator } : {}),
    });
    interrupted();
    const approverPort = opts.approverPort !== undefined ? opts.approverPort : config.pyexec.approver.port;
    if (approverPort !== null) {
      approver = await startApproverApi({
        config,
        redisUrl,
        logger,
        metrics: fleet.metrics,
        port: approverPort,
      });
      if (config.pyexec.approver.tokens.length === 0) {
        logger.warn('no approver tokens configured: the approver API refuses every call (pyexec approver new-token)');
      }
    }
    interrupted();
    const apiPort = opts.apiPort !== undefined ? opts.apiPort : config.pyexec.api.port;
    if (apiPort !== null) {
      const { startProducerApi } = await import('../api/producer-server.js');
      api = await startProducerApi({ config, redisUrl, logger, port: apiPort });
    }
    interrupted();
    const started = fleet;
    const approverApi = approver;
    const producerApi = api;
    return {
      fleet,
      redisUrl,
      ...(redis ? { redis } : {}),
      ...(ioc ? { ioc } : {}),
      ...(approver ? { approver } : {}),
      ...(api ? { api } : {}),
      async close(graceMs = 0) {
        await producerApi?.close();
        await approverApi?.close();
        await started.close(graceMs);
        await ioc?.stop();
        await redis?.stop();
      },
    };
  } catch (err) {
    // In the reverse order of the start: the fleet drains while Redis is still there.
    await api?.close();
    await approver?.close();
    await fleet?.close();
    await ioc?.stop();
    await redis?.stop();
    throw err;
  }
}

export async function upCommand(
  opts: GlobalOptions & { ioc?: boolean; stages?: Stage[] },
  config: Config,
  logger: Logger,
): Promise<void> {
  // Signals count from the first moment: one during start-up stops what has started (in order)
  // once the step under way is done, and nothing is left running.
  const startup = new AbortController();
  let starting: Promise<LocalStack> | undefined;
  onShutdown(
    async (grace) => {
      startup.abort();
      const stack = await starting?.catch(() => undefined);
      await stack?.close(grace);
      clearUpState();
    },
    config.pyexec.shutdown_grace_ms,
    logger,
  );
  starting = startLocalStack({ ...opts, signal: startup.signal }, config, logger);
  let stack: LocalStack;
  try {
    stack = await starting;
  } catch (err) {
    // Interrupted: the signal handler finishes the shutdown and exits.
    if (err instanceof StartupAborted) return;
    throw err;
  }
  writeUpState({
    redisUrl: stack.redisUrl,
    pid: process.pid,
    metricsPort: stack.fleet.metricsPort,
    ...(stack.ioc ? { iocPort: stack.ioc.port } : {}),
    prefix: config.pyexec.redis.prefix,
  });
  process.stdout.write(
    `pyexec is up: redis ${redactUrl(stack.redisUrl)}, ` +
      `${stack.fleet.metricsPort === null ? 'no metrics server' : `metrics http://${urlHost(config.pyexec.metrics_host)}:${stack.fleet.metricsPort}/metrics`}` +
      `${stack.approver ? `, approver ${stack.approver.url}/` : ''}` +
      `${stack.api ? `, producer API ${stack.api.url}/v1 (OpenAPI ${stack.api.url}/v1/openapi.json)` : ''}` +
      `${stack.ioc ? `, soft IOC on CA port ${stack.ioc.port}` : ''}. Ctrl-C to stop.\n`,
  );
}
