import { readFile } from 'node:fs/promises';
import path from 'node:path';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ApproverIdentity, TokenAuthenticator } from '../approval/tokens.js';
import { PRODUCER_CAN } from '../approval/tokens.js';
import { toPyexecEvent } from '../client/events.js';
import { PROBLEM_TYPE, Problem, problemFromError, problemOf } from '../client/problem.js';
import type { PyexecClient } from '../client/pyexec-client.js';
import {
  approvalRequiredView,
  EventView,
  RequestStatusSchema,
  RequestView,
  requestView,
  SubmitResultView,
  WaitResultView,
} from '../client/wire.js';
import {
  ForbiddenError,
  RateLimitedError,
  RequestFinishedError,
  RequestNotFoundError,
  TooManyStreamsError,
  UnauthorizedError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { PythonExecutionResponse } from '../queues/result.js';
import { PythonExecutionRequest } from '../request.js';
import { type RequestSnapshot, TERMINAL } from '../store/request-store.js';
import type { EventHub } from './event-hub.js';

export interface ProducerAppOptions {
  /** Submits, reads and cancels (its Redis connection is the API's command connection). */
  readonly client: PyexecClient;
  readonly hub: EventHub;
  readonly auth: TokenAuthenticator;
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  readonly rateLimit: { readonly max: number; readonly windowMs: number };
  readonly maxWaitSeconds: number;
  readonly maxStreams: number;
  readonly keepAliveMs: number;
  /** Figures are served only from under this folder. */
  readonly executionRoot: string;
  readonly version: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    producer: ApproverIdentity | null;
  }
}

const RequestId = z.object({ id: z.uuid() });
const StreamId = z.string().regex(/^\d{1,20}-\d{1,20}$/, 'an event id (<ms>-<seq>)');
const Bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const WaitQuery = z.object({
  timeout_seconds: z.coerce.number().positive().optional().describe('how long to wait (capped by the server)'),
  return_on_approval: Bool.default(true).describe('answer as soon as the request is held for approval'),
});
const ListQuery = z.object({
  status: z
    .string()
    .max(300)
    .transform((v) => v.split(',').filter(Boolean))
    .pipe(z.array(RequestStatusSchema))
    .optional()
    .describe('comma-separated statuses'),
  thread_id: z.string().min(1).max(200).optional(),
  since: z.coerce.number().int().min(0).optional().describe('submitted at or after (ms since the epoch)'),
  until: z.coerce.number().int().min(0).optional().describe('submitted at or before (ms since the epoch)'),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,400}$/)
    .optional()
    .describe('next_cursor of the previous page'),
});
const EventsQuery = z.object({ after: StreamId.optional().describe('resume after this event id (as Last-Event-ID)') });
const CancelResult = z.object({
  request_id: z.string(),
  cancel_requested: z.literal(true),
  status: RequestStatusSchema,
});
const ListResult = z.object({ items: z.array(RequestView), next_cursor: z.string().nullable() });
const WhoAmI = z.object({ name: z.string(), role: z.enum(['viewer', 'approver', 'producer']) });
const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [c, { description: 'a problem (RFC 9457)', content: { [PROBLEM_TYPE]: { schema: Problem } } }]),
  );
const SECURED = [{ bearer: [] }];

/**
 * The producer HTTP API (any language): submit (idempotent by thread id and content), get, wait
 * (long-poll), events (server-sent events, resumable with Last-Event-ID), cancel, list with filters, and the
 * OpenAPI document generated from the same zod schemas that validate the calls. Bearer tokens from
 * `pyexec.approver.tokens`: `producer` tokens submit, follow and cancel their own requests
 * (another producer's are 404 to them); `viewer` and `approver` tokens read every request. Errors
 * are problem+json with the clients' error codes. Limits: body size (413), calls per token per
 * window (429), open streams and waits per process (503).
 */
export async function buildProducerApp(options: ProducerAppOptions): Promise<FastifyInstance> {
  const { client, hub, auth, logger } = options;
  const app = Fastify({ logger: false, bodyLimit: options.bodyLimitBytes, trustProxy: false });
  app.setValidatorCompiler(validatorCompiler);
  // Responses are written as they are (the schemas document them; tests check them).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.decorateRequest('producer', null);
  let open = 0;

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'pyexec producer API',
        version: options.version,
        description:
          'Ask pyexec for a computation: submit a request, follow its events (live output), wait for its response. Errors are application/problem+json.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    transform: jsonSchemaTransform,
  });

  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config?.public) return;
    req.producer = auth.authenticate(req.headers.authorization);
    if (!req.producer) {
      reply.header('www-authenticate', 'Bearer realm="pyexec"');
      throw new UnauthorizedError('a valid bearer token is required');
    }
    reply.header('cache-control', 'no-store');
  });
  await app.register(rateLimit, {
    global: true,
    hook: 'preHandler',
    max: options.rateLimit.max,
    timeWindow: options.rateLimit.windowMs,
    keyGenerator: (req) => (req.producer ? `token:${req.producer.name}` : `ip:${req.ip}`),
    errorResponseBuilder: (_req, ctx) =>
      new RateLimitedError(`more than ${ctx.max} calls in ${ctx.after}`, Math.ceil(ctx.ttl / 1000)),
  });
  app.setErrorHandler((err, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const problem = problemOf('request_invalid', `invalid ${err.validationContext ?? 'input'}`, {
        errors: err.validation.map((v) => ({
          path: `${err.validationContext ?? ''}${v.instancePath || ''}`,
          message: v.message ?? 'invalid',
        })),
      });
      return sendProblem(reply, problem);
    }
    const problem = problemFromError(err);
    if (problem.status >= 500 && problem.code === 'internal_error')
      logger.error({ err: (err as Error).message, stack: (err as Error).stack, url: req.url }, 'producer API error');
    if (problem.code === 'rate_limited' && problem.retry_after_seconds)
      reply.header('retry-after', String(problem.retry_after_seconds));
    return sendProblem(reply, problem);
  });

  const api = app.withTypeProvider<ZodTypeProvider>();
  const who = (req: FastifyRequest): ApproverIdentity => req.producer!;
  /** The request, if this token may see it (another producer's request does not exist for it). */
  const visible = async (req: FastifyRequest, requestId: string): Promise<RequestSnapshot> => {
    const snap = await client.status(requestId);
    const me = who(req);
    if (!snap || (!PRODUCER_CAN[me.role].readAll && snap.submittedBy !== me.name))
      throw new RequestNotFoundError(`no request ${requestId}`);
    return snap;
  };
  const mustSubmit = (req: FastifyRequest) => {
    const me = who(req);
    if (!PRODUCER_CAN[me.role].submit)
      throw new ForbiddenError(`${me.name} (${me.role}) may not submit or cancel; a producer token is required`);
    return me;
  };
  /** Counts an open stream or wait; refuses past the process's bound. */
  const slot = (): (() => void) => {
    if (open >= options.maxStreams)
      throw new TooManyStreamsError(`this API process already holds ${options.maxStreams} open streams and waits`);
    open++;
    let released = false;
    return () => {
      if (!released) open--;
      released = true;
    };
  };

  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/v1/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());

  api.get(
    '/v1/whoami',
    { schema: { summary: 'The token’s name and role', security: SECURED, response: { 200: WhoAmI, ...errors(401) } } },
    async (req) => who(req),
  );

  api.post(
    '/v1/requests',
    {
      schema: {
        summary: 'Submit a request (idempotent by thread_id and content)',
        description:
          'A request is Osprey’s PythonExecutionRequest plus thread_id. The same request on the same thread_id again answers 200 with the request it names (nothing is enqueued twice); a new one 201, and so does a different request on a thread this producer used (the thread then names it). Another producer’s thread is 409; a request over pyexec.request_limits is 413 (request_too_large).',
        security: SECURED,
        body: PythonExecutionRequest,
        response: { 200: SubmitResultView, 201: SubmitResultView, ...errors(400, 401, 403, 409, 413, 429) },
      },
    },
    async (req, reply) => {
      const me = mustSubmit(req);
      // Another producer's thread is refused inside the store's submit (ThreadConflictError, 409).
      // A producer that traces sends W3C `traceparent` / `tracestate`: the request's trace continues it.
      const header = (name: string) => (typeof req.headers[name] === 'string' ? req.headers[name] : undefined);
      const trace = { traceparent: header('traceparent'), tracestate: header('tracestate') };
      const sub = await client.submit(req.body, { submittedBy: me.name, trace });
      reply.code(sub.created ? 201 : 200).header('location', `/v1/requests/${sub.requestId}`);
      return { request_id: sub.requestId, thread_id: sub.threadId, created: sub.created };
    },
  );

  api.get(
    '/v1/requests',
    {
      schema: {
        summary: 'List requests, newest first (responses left out: get one for its response)',
        security: SECURED,
        querystring: ListQuery,
        response: { 200: ListResult, ...errors(400, 401, 429) },
      },
    },
    async (req) => {
      const q = req.query;
      const me = who(req);
      const page = await client.store.list({
        ...(q.status ? { statuses: q.status } : {}),
        ...(q.thread_id ? { threadId: q.thread_id } : {}),
        ...(q.since !== undefined ? { since: q.since } : {}),
        ...(q.until !== undefined ? { until: q.until } : {}),
        ...(q.cursor ? { cursor: q.cursor } : {}),
        ...(PRODUCER_CAN[me.role].readAll ? {} : { submittedBy: me.name }),
        limit: q.limit,
      });
      return {
        items: page.items.map((s) => ({ ...requestView(s), response: null })),
        next_cursor: page.nextCursor,
      };
    },
  );

  api.get(
    '/v1/requests/:id',
    {
      schema: {
        summary: 'A request: where it is, and its response once it ended',
        security: SECURED,
        params: RequestId,
        response: { 200: RequestView, ...errors(400, 401, 404, 429) },
      },
    },
    async (req) => requestView(await visible(req, req.params.id)),
  );

  api.get(
    '/v1/requests/:id/wait',
    {
      schema: {
        summary: 'Wait for the response (long-poll)',
        description:
          'Answers when the request ends (kind finished), is held for approval (kind approval_required, with what the approver sees; unless return_on_approval=false), or at the timeout (kind timeout: call again).',
        security: SECURED,
        params: RequestId,
        querystring: WaitQuery,
        response: { 200: WaitResultView, ...errors(400, 401, 404, 429, 503) },
      },
    },
    async (req) => {
      await visible(req, req.params.id);
      const release = slot();
      const seconds = Math.min(req.query.timeout_seconds ?? options.maxWaitSeconds, options.maxWaitSeconds);
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), seconds * 1000);
      req.raw.on('close', () => stop.abort());
      try {
        const id = req.params.id;
        for await (const raw of hub.follow(id, '0', stop.signal)) {
          const ev = toPyexecEvent(raw);
          if (ev?.type === 'finished' || (raw.status && TERMINAL.includes(raw.status))) {
            const snap = await client.status(id);
            if (snap?.response)
              return { kind: 'finished' as const, response: snap.response as PythonExecutionResponse };
          }
          if (ev?.type === 'approval_required' && req.query.return_on_approval) {
            const held = await client.approvalRequired(id);
            if (held) return approvalRequiredView(held);
          }
        }
        const snap = await client.status(id);
        if (snap?.response) return { kind: 'finished' as const, response: snap.response as PythonExecutionResponse };
        return { kind: 'timeout' as const, request: snap ? requestView(snap) : null };
      } finally {
        clearTimeout(timer);
        release();
      }
    },
  );

  api.get(
    '/v1/requests/:id/events',
    {
      schema: {
        summary: 'The request’s events as server-sent events (live output), from the start or after Last-Event-ID',
        description:
          'Each message has `id` (resume after it with the Last-Event-ID header or ?after=), `event` (the type) and `data` (the event as JSON). The stream ends after the `finished` event.',
        security: SECURED,
        params: RequestId,
        querystring: EventsQuery,
        headers: z.object({ 'last-event-id': StreamId.optional() }),
        response: {
          200: { description: 'text/event-stream of events', content: { 'text/event-stream': { schema: EventView } } },
          ...errors(400, 401, 404, 429, 503),
        },
      },
    },
    async (req, reply) => {
      await visible(req, req.params.id);
      const release = slot();
      const after = req.headers['last-event-id'] ?? req.query.after ?? '0';
      const stop = new AbortController();
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write('retry: 1000\n\n');
      const ping = setInterval(() => res.write(': keep-alive\n\n'), options.keepAliveMs);
      res.on('close', () => stop.abort());
      try {
        for await (const raw of hub.follow(req.params.id, after, stop.signal)) {
          const ev = toPyexecEvent(raw);
          if (!ev) continue;
          if (!res.write(`id: ${ev.id}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`))
            await new Promise<void>((resolve) => {
              res.once('drain', resolve);
              res.once('close', resolve);
            });
          if (ev.type === 'finished') break;
        }
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'event stream ended by an error');
      } finally {
        clearInterval(ping);
        release();
        res.end();
      }
    },
  );

  api.post(
    '/v1/requests/:id/cancel',
    {
      schema: {
        summary: 'Cancel a request (a held one ends at once; a running execution is interrupted)',
        security: SECURED,
        params: RequestId,
        response: { 202: CancelResult, ...errors(400, 401, 403, 404, 409, 429) },
      },
    },
    async (req, reply) => {
      mustSubmit(req);
      const snap = await visible(req, req.params.id);
      if (TERMINAL.includes(snap.status))
        throw new RequestFinishedError(`request ${snap.requestId} already ended (${snap.status})`);
      await client.cancel(snap.requestId);
      reply.code(202);
      return { request_id: snap.requestId, cancel_requested: true as const, status: snap.status };
    },
  );

  api.get(
    '/v1/requests/:id/figures/:n',
    {
      schema: {
        summary: 'A figure of a finished request (image/png), by its index in figure_paths',
        security: SECURED,
        params: RequestId.extend({ n: z.coerce.number().int().min(0).max(1000) }),
        response: {
          200: {
            description: 'the figure',
            content: { 'image/png': { schema: z.string().describe('PNG bytes') } },
          },
          ...errors(400, 401, 404, 429),
        },
      },
    },
    async (req, reply) => {
      const snap = await visible(req, req.params.id);
      const file = (snap.response as PythonExecutionResponse | undefined)?.figure_paths?.[req.params.n];
      const root = path.resolve(options.executionRoot);
      const resolved = file ? path.resolve(file) : '';
      if (!file || !resolved.startsWith(root + path.sep))
        throw new RequestNotFoundError(`request ${snap.requestId} has no figure ${req.params.n}`);
      const body = await readFile(resolved).catch(() => {
        throw new RequestNotFoundError(`figure ${req.params.n} of request ${snap.requestId} is gone`);
      });
      return reply.type('image/png').send(body as unknown as string);
    },
  );

  return app;
}

function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type(PROBLEM_TYPE).send(problem);
}
