import type { FastifyInstance } from 'fastify';
import { runCloseSteps } from '../../close-steps.js';
import type { Config } from '../../config.js';
import { ConfigError } from '../../errors.js';
import { listenOn } from '../../http/listen.js';
import { urlHost } from '../../http/url-host.js';
import { type Logger, silentLogger } from '../../logger.js';
import { Metrics } from '../../metrics.js';
import { createQueueSet, type QueueSet } from '../../queues/queue-set.js';
import type { RedisConnection as Redis } from '../../redis/connection.js';
import { createRedis, keyPrefix } from '../../redis/connection.js';
import { ApprovalFeed } from '../approval-feed.js';
import { ApprovalService } from '../approval-service.js';
import { PvReader } from '../pv-reader.js';
import { TokenAuthenticator } from '../tokens.js';
import { buildApproverApp } from './routes.js';

export interface ApproverApiOptions {
  readonly config: Config;
  readonly redisUrl: string;
  /** Port to listen on; 0 picks a free one. @defaultValue config.pyexec.approver.port (8470) */
  readonly port?: number;
  /** Interface to bind. @defaultValue config.pyexec.approver.host ("127.0.0.1") */
  readonly host?: string;
  /** @defaultValue a silent logger */
  readonly logger?: Logger;
  /**
   * Where decision counters and the time-to-decision histogram go. Pass the process's registry
   * (e.g. the fleet's in `pyexec up`) so its `/metrics` shows them. @defaultValue a private registry
   */
  readonly metrics?: Metrics;
  /**
   * Also answer `GET /metrics` (Prometheus text, no token; refreshes `pyexec_approval_held_jobs`)
   * on the API's port: for a standalone `pyexec approver serve`. @defaultValue false
   */
  readonly serveMetrics?: boolean;
  /**
   * Reads the current values of the PVs a held job writes. @defaultValue a PvReader on the
   * read_only mode's EPICS environment (`execution.modes.read_only.environment`); null: none
   */
  readonly pvReader?: PvReader | null;
}

export interface ApproverApi {
  /** Base URL, e.g. `http://127.0.0.1:8470`. */
  readonly url: string;
  readonly port: number;
  readonly app: FastifyInstance;
  readonly approvals: ApprovalService;
  /** Idempotent: ends live streams, stops listening, closes the Redis connections. */
  close(): Promise<void>;
}

/**
 * Starts the approver HTTP API and web page on its own Redis connections: one for commands and a
 * dedicated one for the live event stream. Fails (and leaves nothing open) when Redis is unreachable
 * or the port is taken. With no tokens configured every `/api` call is refused (fail closed).
 */
export async function startApproverApi(options: ApproverApiOptions): Promise<ApproverApi> {
  const { config } = options;
  const logger = (options.logger ?? silentLogger()).child({ component: 'approver-api' });
  const prefix = keyPrefix(config.pyexec.redis.prefix);
  const metrics = options.metrics ?? new Metrics({ defaultMetrics: false });
  const cleanups: Array<() => Promise<unknown>> = [];
  const closeAll = () => runCloseSteps(cleanups, logger);
  try {
    const redis: Redis = createRedis(options.redisUrl, 'producer', {}, config.pyexec.redis.cluster);
    cleanups.push(async () => redis.disconnect());
    await redis.connect();
    const queues: QueueSet = createQueueSet(redis, prefix, config);
    cleanups.push(() => queues.close());
    const approvals = new ApprovalService(redis, prefix, queues.approval, {
      retentionSeconds: config.pyexec.retention.finished_seconds,
      metrics,
    });
    const feedConnection = createRedis(options.redisUrl, 'worker', {}, config.pyexec.redis.cluster);
    cleanups.push(async () => feedConnection.disconnect());
    const cancelConnection = createRedis(options.redisUrl, 'worker', {}, config.pyexec.redis.cluster);
    cleanups.push(async () => cancelConnection.disconnect());
    const feed = await ApprovalFeed.start(feedConnection, prefix, cancelConnection);
    cleanups.push(() => feed.close());
    // A producer cancelled: a hold of that request ends now (any process hearing it may do this).
    feed.subscribe((e) => {
      if (e.event === 'cancelled' && e.requestId)
        approvals.withdraw(e.requestId).catch((err) => logger.warn({ err: (err as Error).message }, 'withdraw failed'));
    });
    const pvReader =
      options.pvReader === undefined
        ? new PvReader({ env: config.execution.modes.read_only.environment, python: config.pyexec.python })
        : options.pvReader;

    const auth = new TokenAuthenticator(config.pyexec.approver.tokens);
    if (auth.size === 0)
      logger.warn('no approver tokens configured (pyexec.approver.tokens): every API call will be refused');
    const app = buildApproverApp({
      desk: approvals,
      auth,
      logger,
      feed,
      ...(pvReader ? { readPvs: (names: readonly string[]) => pvReader.read(names) } : {}),
      ...(options.serveMetrics
        ? {
            extraRoutes: (a: FastifyInstance) =>
              a.get('/metrics', { config: { public: true } }, async (_req, reply) => {
                await approvals.refreshHeldGauge().catch(() => undefined);
                return reply
                  .header('content-type', metrics.registry.contentType)
                  .send(await metrics.registry.metrics());
              }),
          }
        : {}),
    });
    cleanups.push(() => app.close());
    const host = options.host ?? config.pyexec.approver.host;
    const port = await listenOn(app, {
      port: approverPort(options.port, config),
      host,
      setting: APPROVER_PORT_SETTING,
    });
    const url = `http://${urlHost(host)}:${port}`;
    logger.info({ url, tokens: auth.size }, 'approver API listening');
    let closing: Promise<void> | undefined;
    return { url, port, app, approvals, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The host part of a URL that reaches a server bound to `host`. */
export { urlHost };

/** Named when the approver API's port cannot be bound. */
const APPROVER_PORT_SETTING =
  'pyexec.approver.port (PYEXEC_APPROVER_PORT; `approver serve --port`, `up --approver-port`)';

function approverPort(port: number | undefined, config: Config): number {
  const chosen = port ?? config.pyexec.approver.port;
  if (chosen === null) {
    throw new ConfigError('pyexec.approver.port: null turns the approver API off; give a port (or --port) to serve it');
  }
  return chosen;
}
