import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { TokenAuthenticator } from '../approval/tokens.js';
import { PyexecClient } from '../client/pyexec-client.js';
import { runCloseSteps } from '../close-steps.js';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { listenOn } from '../http/listen.js';
import { urlHost } from '../http/url-host.js';
import { type Logger, silentLogger } from '../logger.js';
import { createRedis, keyPrefix } from '../redis/connection.js';
import { RequestStore } from '../store/request-store.js';
import { EventHub } from './event-hub.js';
import { buildProducerApp } from './producer-routes.js';

export interface ProducerApiOptions {
  readonly config: Config;
  readonly redisUrl: string;
  /** Port; 0 picks a free one. @defaultValue config.pyexec.api.port (8471) */
  readonly port?: number;
  /** @defaultValue config.pyexec.api.host ("127.0.0.1") */
  readonly host?: string;
  readonly logger?: Logger;
}

export interface ProducerApi {
  /** Base URL, e.g. `http://127.0.0.1:8471`. */
  readonly url: string;
  readonly port: number;
  readonly app: FastifyInstance;
  /** Open event streams and waits end; stops listening; closes its Redis connections. Idempotent. */
  close(): Promise<void>;
}

/** Named when the producer API's port cannot be bound. */
const API_PORT_SETTING = 'pyexec.api.port (PYEXEC_API_PORT; `api serve --port`, `up --api-port`)';

/**
 * Starts the producer HTTP API on its own Redis connections: one for commands (submits, reads) and
 * one dedicated to the event hub's blocking read. Fails (leaving nothing open) when Redis is
 * unreachable or the port is taken. With no producer tokens configured every call but the OpenAPI
 * document and /healthz is refused (fail closed).
 */
export async function startProducerApi(options: ProducerApiOptions): Promise<ProducerApi> {
  const { config } = options;
  const logger = (options.logger ?? silentLogger()).child({ component: 'producer-api' });
  const settings = config.pyexec.api;
  const cleanups: Array<() => Promise<unknown>> = [];
  const closeAll = () => runCloseSteps(cleanups, logger);
  try {
    const client = await PyexecClient.connect({ redisUrl: options.redisUrl, config });
    cleanups.push(() => client.close());
    const control = createRedis(options.redisUrl, 'producer', {}, config.pyexec.redis.cluster);
    cleanups.push(async () => control.disconnect());
    await control.connect();
    const reader = createRedis(options.redisUrl, 'worker', {}, config.pyexec.redis.cluster);
    const hub = new EventHub(new RequestStore(control, keyPrefix(config.pyexec.redis.prefix)), reader, control);
    // Closed in reverse: the hub first, which ends every open stream and wait; then the server.
    let built: FastifyInstance | undefined;
    cleanups.push(async () => built?.close());
    cleanups.push(() => hub.close());
    const auth = new TokenAuthenticator(config.pyexec.approver.tokens);
    if (!config.pyexec.approver.tokens.some((t) => t.role === 'producer'))
      logger.warn('no producer tokens configured (pyexec.approver.tokens, role producer): nobody can submit');
    const app = await buildProducerApp({
      client,
      hub,
      auth,
      logger,
      bodyLimitBytes: settings.body_limit_bytes,
      rateLimit: { max: settings.rate_limit_max, windowMs: settings.rate_limit_window_ms },
      maxWaitSeconds: settings.max_wait_seconds,
      maxStreams: settings.max_streams,
      keepAliveMs: settings.keep_alive_ms,
      executionRoot: config.pyexec.execution_root,
      version: packageVersion(),
    });
    built = app;
    const host = options.host ?? settings.host;
    const chosen = options.port ?? settings.port;
    if (chosen === null)
      throw new ConfigError('pyexec.api.port: null turns the producer API off; give a port (or --port) to serve it');
    const port = await listenOn(app, { port: chosen, host, setting: API_PORT_SETTING });
    const url = `http://${urlHost(host)}:${port}`;
    logger.info({ url }, 'producer API listening');
    let closing: Promise<void> | undefined;
    return { url, port, app, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    return '0.0.0';
  }
}
