import Fastify, { type FastifyInstance } from 'fastify';
import { listenOn } from '../http/listen.js';
import type { Metrics } from '../metrics.js';

export type ProcessState = 'starting' | 'running' | 'draining' | 'stopped';
export const PROCESS_STATES: readonly ProcessState[] = ['starting', 'running', 'draining', 'stopped'];

export interface OpsServerOptions {
  readonly metrics: Metrics;
  readonly port: number;
  /** @defaultValue "127.0.0.1" */
  readonly host?: string;
  /** The setting that chose the port, named when it cannot be bound. @defaultValue "pyexec.metrics_port" */
  readonly setting?: string;
  readonly state: () => ProcessState;
  /** Extra readiness checks (Redis reachable, a kernel available...): name → ok. */
  readonly ready: () => Promise<Record<string, boolean>>;
  /** Facts /readyz reports beside the checks (e.g. the confinement in force). */
  readonly info?: () => Record<string, unknown>;
  /** Refreshes gauges that are read at scrape time (queue depths). */
  readonly beforeScrape?: () => Promise<void>;
  /** Exposition text appended to the registry's (families prom-client does not own, e.g. bullmq_job_count). */
  readonly extraMetrics?: () => Promise<string>;
}

/** `/metrics` (Prometheus text), `/healthz` (alive) and `/readyz` (can take work) of one process. */
export async function startOpsServer(
  options: OpsServerOptions,
): Promise<{ app: FastifyInstance; port: number; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ status: 'ok', state: options.state() }));
  app.get('/readyz', async (_req, reply) => {
    const state = options.state();
    let checks: Record<string, boolean>;
    try {
      checks = await options.ready();
    } catch {
      checks = { checks: false };
    }
    const ok = state === 'running' && Object.values(checks).every(Boolean);
    return reply.code(ok ? 200 : 503).send({ ready: ok, state, checks, ...(options.info?.() ?? {}) });
  });
  app.get('/metrics', async (_req, reply) => {
    try {
      await options.beforeScrape?.();
    } catch {
      // A scrape still answers with what it has when Redis is away.
    }
    for (const s of PROCESS_STATES) options.metrics.processState.set({ state: s }, s === options.state() ? 1 : 0);
    const extra = await options.extraMetrics?.().catch(() => '');
    const text = await options.metrics.registry.metrics();
    return reply.header('content-type', options.metrics.registry.contentType).send(extra ? `${text}${extra}` : text);
  });
  const port = await listenOn(app, {
    port: options.port,
    host: options.host ?? '127.0.0.1',
    setting: options.setting ?? 'pyexec.metrics_port',
  });
  let closing: Promise<void> | undefined;
  return { app, port, close: () => (closing ??= app.close()) };
}
