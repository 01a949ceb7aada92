import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApprovalConflictError, ApprovalNotFoundError, InvalidRequestError, ServiceError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { ApprovalEventSource, ApprovalFeedEvent } from '../approval-feed.js';
import type { ApprovalService } from '../approval-service.js';
import { ApprovalStaleError } from '../errors.js';
import { heldDetail, heldSummary } from '../held-view.js';
import type { PvReading } from '../pv-reader.js';
import { type ApproverIdentity, CAN, type TokenAuthenticator } from '../tokens.js';

/** The part of ApprovalService the API uses (a fake in unit tests). */
export type ApprovalDesk = Pick<ApprovalService, 'listHeld' | 'show' | 'resolve' | 'decide' | 'auditLog' | 'outcome'>;

/** Reads current PV values through the read-only path (PvReader); absent: the page shows none. */
export type ReadPvs = (names: readonly string[]) => Promise<Record<string, PvReading>>;

export interface ApproverAppOptions {
  readonly desk: ApprovalDesk;
  readonly auth: TokenAuthenticator;
  readonly logger: Logger;
  /** Live events for `/api/events`; without it the stream only sends keep-alives. */
  readonly feed?: ApprovalEventSource;
  /** Extra routes (e.g. `/metrics` of a standalone approver process); mark them `config: { public: true }` to serve them without a token. */
  readonly extraRoutes?: (app: FastifyInstance) => void;
  /** Keep-alive comment interval of `/api/events`. @defaultValue 15000 */
  readonly keepAliveMs?: number;
  /** Current values of the PVs a held job writes, for `/api/held/:id/pvs`. */
  readonly readPvs?: ReadPvs;
}

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 hex digest');
/** An approval names the code and analysis the approver was shown: the API refuses it if either changed. */
const ApproveBody = z
  .object({ codeSha256: Sha256, analysisSha256: Sha256, payload: z.record(z.string(), z.unknown()).optional() })
  .strict();
const RejectBody = z
  .object({
    reason: z.string().trim().min(1, 'a rejection needs a reason').max(4000),
    codeSha256: Sha256.optional(),
    analysisSha256: Sha256.optional(),
  })
  .strict();
const HoldParams = z.object({ id: z.string().min(1).max(300) });
const Outcome = z.enum(['approved', 'rejected', 'expired', 'cancelled']);
const AuditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(10_000).default(200),
  /** Comma-separated outcomes: approved,rejected,expired,cancelled. */
  decision: z
    .string()
    .max(100)
    .transform((v) => v.split(',').filter(Boolean))
    .pipe(z.array(Outcome))
    .optional(),
  approver: z.string().min(1).max(200).optional(),
  /** Part of a request id, thread id, hold job id or task. */
  q: z.string().min(1).max(200).optional(),
  since: z.coerce.number().int().min(0).optional(),
  until: z.coerce.number().int().min(0).optional(),
});

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

const WEB = new URL('../web/', import.meta.url);
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  '/highlight.js': { file: 'highlight.js', type: 'text/javascript; charset=utf-8' },
};

declare module 'fastify' {
  interface FastifyRequest {
    approver: ApproverIdentity | null;
  }
  interface FastifyContextConfig {
    /** Served without a token (the page, its assets, health, metrics). Every other route needs one. */
    public?: boolean;
  }
}

/**
 * The approver API and web page. Every `/api` route needs a bearer token (401 without a valid one);
 * deciding needs the `approver` role (403 for viewers). The page itself carries no data and is
 * served without a token: it asks for one and sends it with each API call. A held job is named by
 * its hold job id, its request id or its thread id. A decision on a job that expired, was cancelled
 * by its producer, was decided already, or changed since it was shown is a 409 and records nothing.
 */
export function buildApproverApp(options: ApproverAppOptions): FastifyInstance {
  const { desk, auth, logger } = options;
  const app = Fastify({ logger: false, bodyLimit: 256 * 1024, trustProxy: false });
  const streams = new Set<ServerResponse>();
  app.decorateRequest('approver', null);

  app.addHook('onSend', async (_req, reply) => {
    reply.headers(SECURITY_HEADERS);
  });
  // Default deny, decided on the matched route (not the raw URL, whose %-escapes the router decodes).
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public) return;
    req.approver = auth.authenticate(req.headers.authorization);
    if (!req.approver) {
      logger.warn(
        { address: req.ip, url: req.url, presented: Boolean(req.headers.authorization) },
        'approver API: refused token',
      );
      return sendError(
        reply.header('www-authenticate', 'Bearer realm="pyexec-approver"'),
        401,
        'unauthorized',
        'a valid bearer token is required',
      );
    }
    if (!CAN[req.approver.role].read) {
      // A producer's token is for the producer API, not for reading held jobs.
      return sendError(
        reply,
        403,
        'forbidden',
        `${req.approver.name} (${req.approver.role}) may not use the approver API`,
      );
    }
    reply.header('cache-control', 'no-store');
  });
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
  });
  app.setErrorHandler((err, req, reply) => {
    const [status, code] = statusOf(err);
    if (status >= 500) logger.error({ err: (err as Error).message, url: req.url }, 'approver API error');
    return sendError(reply, status, code, status >= 500 ? 'internal error' : (err as Error).message);
  });

  for (const [route, asset] of Object.entries(ASSETS)) {
    const body = readFileSync(new URL(asset.file, WEB));
    app.get(route, { config: { public: true } }, async (_req, reply) =>
      reply.type(asset.type).header('cache-control', 'no-cache').send(body),
    );
  }
  app.get('/healthz', { config: { public: true } }, async () => ({ status: 'ok' }));
  options.extraRoutes?.(app);

  app.get('/api/whoami', async (req) => req.approver);
  app.get('/api/held', async () => ({ held: (await desk.listHeld()).map(heldSummary) }));
  app.get('/api/held/:id', async (req) => heldDetail(await desk.show(parse(HoldParams, req.params).id)));
  app.get('/api/held/:id/pvs', async (req) => {
    const pvs = heldDetail(await desk.show(parse(HoldParams, req.params).id)).writePvs;
    if (!options.readPvs) return { available: false, readings: {} };
    return { available: true, readings: await options.readPvs(pvs) };
  });
  app.get('/api/requests/:id', async (req) => desk.outcome(parse(HoldParams, req.params).id));
  app.get('/api/audit', async (req) => {
    const q = parse(AuditQuery, req.query);
    return {
      entries: await desk.auditLog({
        limit: q.limit,
        ...(q.decision ? { decisions: q.decision } : {}),
        ...(q.approver ? { approver: q.approver } : {}),
        ...(q.q ? { text: q.q } : {}),
        ...(q.since !== undefined ? { since: q.since } : {}),
        ...(q.until !== undefined ? { until: q.until } : {}),
      }),
    };
  });

  app.post('/api/held/:id/approve', async (req, reply) => {
    const who = mayDecide(req, reply);
    if (!who) return reply;
    const id = await desk.resolve(parse(HoldParams, req.params).id);
    const body = parse(ApproveBody, req.body ?? {});
    const record = await desk.decide(
      id,
      {
        decision: 'approved',
        approver: who.name,
        source: clientOf(req),
        ...(body.payload ? { payload: body.payload } : {}),
      },
      { expect: { codeSha256: body.codeSha256, analysisSha256: body.analysisSha256 }, address: req.ip },
    );
    logger.info({ holdJobId: id, approver: who.name, address: req.ip }, 'approved');
    return { decision: record };
  });
  app.post('/api/held/:id/reject', async (req, reply) => {
    const who = mayDecide(req, reply);
    if (!who) return reply;
    const id = await desk.resolve(parse(HoldParams, req.params).id);
    const body = parse(RejectBody, req.body ?? {});
    const record = await desk.decide(
      id,
      { decision: 'rejected', approver: who.name, reason: body.reason, source: clientOf(req) },
      { expect: { codeSha256: body.codeSha256, analysisSha256: body.analysisSha256 }, address: req.ip },
    );
    logger.info({ holdJobId: id, approver: who.name, address: req.ip }, 'rejected');
    return { decision: record };
  });

  app.get('/api/events', (_req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    });
    streams.add(res);
    const send = (type: string, data: unknown) => res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    send('ready', { at: Date.now() });
    const unsubscribe = options.feed?.subscribe((e: ApprovalFeedEvent) => send('hold', e));
    const ping = setInterval(() => res.write(': keep-alive\n\n'), options.keepAliveMs ?? 15_000);
    res.on('close', () => {
      clearInterval(ping);
      unsubscribe?.();
      streams.delete(res);
    });
  });
  return app;
}

/** The caller's identity if it may decide; otherwise answers 403 and returns null. */
function mayDecide(req: FastifyRequest, reply: FastifyReply): ApproverIdentity | null {
  const who = req.approver;
  if (who && CAN[who.role].decide) return who;
  sendError(
    reply,
    403,
    'forbidden',
    `${who?.name ?? 'this token'} (${who?.role ?? 'no role'}) may not decide; an approver token is required`,
  );
  return null;
}

/** The tool that sent a request, from `x-pyexec-client` (web, cli), for the audit trail. */
function clientOf(req: FastifyRequest): string {
  const raw = req.headers['x-pyexec-client'];
  const value = typeof raw === 'string' ? raw : '';
  return /^[a-z0-9-]{1,20}$/.test(value) ? value : 'api';
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InvalidRequestError(z.prettifyError(parsed.error));
  return parsed.data;
}

function sendError(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.code(status).send({ error: { code, message } });
}

/** HTTP status and error code of anything a route threw. */
function statusOf(err: unknown): [number, string] {
  if (err instanceof ApprovalNotFoundError) return [404, err.code];
  // Expired, cancelled, decided or changed: nothing to decide now, whichever it is (409).
  if (err instanceof ApprovalStaleError || err instanceof ApprovalConflictError) return [409, err.code];
  if (err instanceof ServiceError && err.kind === 'invalid_input') return [400, err.code];
  const status = (err as { statusCode?: number }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return [status, 'bad_request'];
  return [500, 'internal_error'];
}
