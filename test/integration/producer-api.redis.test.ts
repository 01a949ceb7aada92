/**
 * The producer HTTP API on a real Redis with a fleet (mock generator, local executor): every route
 * over real HTTP, auth per role, idempotency by thread id and content, validation errors and limits as
 * problem+json, the list's filters, server-sent events resumed with Last-Event-ID, and the
 * TypeScript HTTP client against it. What unit tests cannot: the event hub's one blocking reader
 * serving many followers, and the API, the fleet and Redis agreeing on every answer.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ProducerApi, startProducerApi } from '../../src/api/producer-server.js';
import { createToken } from '../../src/approval/tokens.js';
import type { PyexecEvent } from '../../src/client/events.js';
import { PyexecHttpClient, parseSse } from '../../src/client/http-client.js';
import { Problem } from '../../src/client/problem.js';
import { RequestView, SubmitResultView, WaitResultView } from '../../src/client/wire.js';
import { ForbiddenError, InvalidRequestError, RequestNotFoundError, UnauthorizedError } from '../../src/errors.js';
import { projectRoot } from '../../src/python-env.js';
import { PythonExecutionResponse } from '../../src/queues/result.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';

const tokens = {
  a: createToken('agent-a', 'producer'),
  b: createToken('agent-b', 'producer'),
  viewer: createToken('vera', 'viewer'),
  approver: createToken('alice', 'approver'),
};
const PRINTS = `import time
for i in range(12):
    print(f"line {i}", flush=True)
    time.sleep(0.05)
results = {'lines': 12}
`;

let bed: TestBed | undefined;
let api: ProducerApi | undefined;
after(stopRedis);
afterEach(async () => {
  await api?.close();
  await bed?.close();
  api = undefined;
  bed = undefined;
});

async function start(overrides: Record<string, unknown> = {}, code = PRINTS) {
  bed = await testBed({
    execution: { generators: { mock: { code } } },
    pyexec: {
      approver: { tokens: Object.values(tokens).map((t) => t.entry) },
      ...((overrides['pyexec'] as Record<string, unknown>) ?? {}),
    },
    ...Object.fromEntries(Object.entries(overrides).filter(([k]) => k !== 'pyexec')),
  });
  await bed.startFleet();
  api = await startProducerApi({ config: bed.config, redisUrl: bed.redisUrl, port: 0 });
  return api;
}

function call(
  path: string,
  init: { token?: string; method?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  return fetch(`${api!.url}${path}`, {
    method: init.method ?? (init.body !== undefined ? 'POST' : 'GET'),
    headers: {
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
    ...(init.body !== undefined ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) } : {}),
  });
}

async function problem(res: Response, status: number, code: string): Promise<Problem> {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const p = Problem.parse(await res.json());
  assert.equal(p.code, code);
  assert.equal(p.status, status);
  assert.equal(p.type, `urn:pyexec:problem:${code}`);
  return p;
}

async function events(res: Response): Promise<PyexecEvent[]> {
  const out: PyexecEvent[] = [];
  for await (const ev of parseSse(res.body!)) out.push(ev);
  return out;
}

describe('producer HTTP API', () => {
  it('submits, waits, gets and streams a request; the same thread id again is the same request', async () => {
    await start();
    const body = sampleRequest({ thread_id: 'agent-a/step-1' });
    const first = await call('/v1/requests', { token: tokens.a.token, body });
    assert.equal(first.status, 201);
    const sub = SubmitResultView.parse(await first.json());
    assert.equal(first.headers.get('location'), `/v1/requests/${sub.request_id}`);
    assert.deepEqual([sub.thread_id, sub.created], ['agent-a/step-1', true]);
    const again = await call('/v1/requests', { token: tokens.a.token, body });
    assert.equal(again.status, 200);
    assert.deepEqual(SubmitResultView.parse(await again.json()), { ...sub, created: false });
    // Idempotent by thread id and content: a different request on the producer's own thread is new.
    const next = await call('/v1/requests', {
      token: tokens.a.token,
      body: { ...body, task_objective: 'the next step' },
    });
    assert.equal(next.status, 201);
    const nextSub = SubmitResultView.parse(await next.json());
    assert.notEqual(nextSub.request_id, sub.request_id);
    assert.deepEqual([nextSub.thread_id, nextSub.created], ['agent-a/step-1', true]);

    const waited = WaitResultView.parse(
      await (await call(`/v1/requests/${sub.request_id}/wait?timeout_seconds=60`, { token: tokens.a.token })).json(),
    );
    assert.equal(waited.kind, 'finished');
    if (waited.kind !== 'finished') return;
    PythonExecutionResponse.parse(waited.response);
    assert.equal(waited.response.status, 'succeeded');
    assert.deepEqual(waited.response.results, { lines: 12 });
    assert.deepEqual(waited.response.execution_result?.results, { lines: 12 });

    const got = RequestView.parse(
      await (await call(`/v1/requests/${sub.request_id}`, { token: tokens.a.token })).json(),
    );
    assert.equal(got.status, 'succeeded');
    assert.equal(got.submitted_by, 'agent-a');
    assert.equal(got.response?.request_id, sub.request_id);

    const res = await call(`/v1/requests/${sub.request_id}/events`, { token: tokens.a.token });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const all = await events(res);
    assert.equal(all[0]?.type, 'submitted');
    assert.equal(all.at(-1)?.type, 'finished');
    const stdout = all.flatMap((e) => (e.type === 'stdout' ? [e.text] : [])).join('');
    assert.equal(stdout, Array.from({ length: 12 }, (_, i) => `line ${i}\n`).join(''));
    assert.equal(stdout, waited.response.execution_stdout);
    const ids = all.map((e) => e.id);
    assert.deepEqual([...ids].sort(compareIds), ids, 'events come in stream order');
  });

  it('resumes an event stream after Last-Event-ID without missing or repeating an event', async () => {
    await start();
    const sub = await new PyexecHttpClient({ url: api!.url, token: tokens.a.token }).submit(sampleRequest());
    const whole = await events(await call(`/v1/requests/${sub.requestId}/events`, { token: tokens.a.token }));
    for (const cut of [0, 3, Math.floor(whole.length / 2), whole.length - 2]) {
      const rest = await events(
        await call(`/v1/requests/${sub.requestId}/events`, {
          token: tokens.a.token,
          headers: { 'last-event-id': whole[cut]!.id },
        }),
      );
      assert.deepEqual(rest, whole.slice(cut + 1), `after event ${cut}`);
    }
    const byQuery = await events(
      await call(`/v1/requests/${sub.requestId}/events?after=${whole[2]!.id}`, { token: tokens.a.token }),
    );
    assert.deepEqual(byQuery, whole.slice(3));
    // A client cut off mid-run reconnects and gets the rest live.
    const live = await new PyexecHttpClient({ url: api!.url, token: tokens.a.token }).submit(sampleRequest());
    const ctrl = new AbortController();
    const firstPart: PyexecEvent[] = [];
    const res = await call(`/v1/requests/${live.requestId}/events`, { token: tokens.a.token });
    for await (const ev of parseSse(res.body!)) {
      firstPart.push(ev);
      if (ev.type === 'stdout') break; // drops the connection mid-run
    }
    ctrl.abort();
    const secondPart = await events(
      await call(`/v1/requests/${live.requestId}/events`, {
        token: tokens.a.token,
        headers: { 'last-event-id': firstPart.at(-1)!.id },
      }),
    );
    const joined = [...firstPart, ...secondPart];
    const again = await events(await call(`/v1/requests/${live.requestId}/events`, { token: tokens.a.token }));
    assert.deepEqual(joined, again);
    assert.equal(joined.at(-1)?.type, 'finished');
  });

  it('refuses calls without a valid token, and lets each role do only its part', async () => {
    await start();
    await problem(await call('/v1/requests', { body: sampleRequest() }), 401, 'unauthorized');
    const bad = await call('/v1/requests', { token: 'pxp_not-a-token', body: sampleRequest() });
    assert.equal(bad.headers.get('www-authenticate'), 'Bearer realm="pyexec"');
    await problem(bad, 401, 'unauthorized');
    await problem(await call('/v1/requests', { token: tokens.viewer.token, body: sampleRequest() }), 403, 'forbidden');
    await problem(
      await call('/v1/requests', { token: tokens.approver.token, body: sampleRequest() }),
      403,
      'forbidden',
    );

    const sub = SubmitResultView.parse(
      await (await call('/v1/requests', { token: tokens.a.token, body: sampleRequest({ thread_id: 'a-1' }) })).json(),
    );
    // Another producer does not see it, cannot cancel it, and cannot take its thread id.
    await problem(await call(`/v1/requests/${sub.request_id}`, { token: tokens.b.token }), 404, 'request_not_found');
    await problem(
      await call(`/v1/requests/${sub.request_id}/events`, { token: tokens.b.token }),
      404,
      'request_not_found',
    );
    await problem(
      await call(`/v1/requests/${sub.request_id}/cancel`, { token: tokens.b.token, method: 'POST' }),
      404,
      'request_not_found',
    );
    await problem(
      await call('/v1/requests', { token: tokens.b.token, body: sampleRequest({ thread_id: 'a-1' }) }),
      409,
      'thread_conflict',
    );
    // Nor with a different request on it (which, from its owner, would be a new request on the thread).
    await problem(
      await call('/v1/requests', {
        token: tokens.b.token,
        body: sampleRequest({ thread_id: 'a-1', task_objective: 'take over the thread' }),
      }),
      409,
      'thread_conflict',
    );
    assert.equal(
      RequestView.parse(
        await (await call('/v1/requests?thread_id=a-1', { token: tokens.a.token })).json().then((l) => l.items[0]),
      ).request_id,
      sub.request_id,
      'the thread still names its owner’s request',
    );
    const listB = await (await call('/v1/requests', { token: tokens.b.token })).json();
    assert.deepEqual(listB.items, []);
    // Viewers and approvers read every request but cannot cancel.
    for (const t of [tokens.viewer, tokens.approver]) {
      assert.equal((await call(`/v1/requests/${sub.request_id}`, { token: t.token })).status, 200);
      await problem(
        await call(`/v1/requests/${sub.request_id}/cancel`, { token: t.token, method: 'POST' }),
        403,
        'forbidden',
      );
    }
    assert.deepEqual(await (await call('/v1/whoami', { token: tokens.viewer.token })).json(), {
      name: 'vera',
      role: 'viewer',
    });
    // The OpenAPI document and health need no token.
    assert.equal((await call('/v1/openapi.json')).status, 200);
    assert.equal((await call('/healthz')).status, 200);
  });

  it('answers invalid input with problem+json naming each field, and enqueues nothing', async () => {
    await start();
    const p = await problem(
      await call('/v1/requests', {
        token: tokens.a.token,
        body: { user_query: '', task_objective: 'x', execution_folder_name: '../etc', surprise: 1 },
      }),
      400,
      'request_invalid',
    );
    const paths = (p.errors ?? []).map((e) => e.path).join(' ');
    assert.match(paths, /user_query/);
    assert.match(paths, /execution_folder_name/);
    await problem(await call('/v1/requests', { token: tokens.a.token, body: '{not json' }), 400, 'request_invalid');
    await problem(await call('/v1/requests/not-a-uuid', { token: tokens.a.token }), 400, 'request_invalid');
    await problem(await call('/v1/requests?status=bogus', { token: tokens.a.token }), 400, 'request_invalid');
    await problem(
      await call(`/v1/requests/${crypto.randomUUID()}/events`, {
        token: tokens.a.token,
        headers: { 'last-event-id': 'nope' },
      }),
      400,
      'request_invalid',
    );
    await problem(
      await call(`/v1/requests/${crypto.randomUUID()}`, { token: tokens.a.token }),
      404,
      'request_not_found',
    );
    // Over pyexec.request_limits (nesting 64): 413 with the Redis client's code, nothing written.
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const tooDeep = await problem(
      await call('/v1/requests', {
        token: tokens.a.token,
        body: sampleRequest({ thread_id: 'too-deep', capability_context_data: deep }),
      }),
      413,
      'request_too_large',
    );
    assert.match(tooDeep.detail, /max_depth/);
    const list = await (await call('/v1/requests', { token: tokens.viewer.token })).json();
    assert.deepEqual(list.items, [], 'nothing was enqueued');
    assert.equal(await bed!.fleets[0]!.queues.generation.count(), 0);
  });

  it('bounds body size and calls per token', async () => {
    await start({ pyexec: { api: { body_limit_bytes: 4096, rate_limit_max: 8, rate_limit_window_ms: 60_000 } } });
    await problem(
      await call('/v1/requests', { token: tokens.a.token, body: sampleRequest({ user_query: 'x'.repeat(10_000) }) }),
      413,
      'payload_too_large',
    );
    let limited: Response | undefined;
    for (let i = 0; i < 12 && !limited; i++) {
      const res = await call('/v1/whoami', { token: tokens.b.token });
      if (res.status === 429) limited = res;
    }
    assert.ok(limited, 'the ninth call in the window is refused');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    const p = await problem(limited, 429, 'rate_limited');
    assert.ok((p.retry_after_seconds ?? 0) > 0);
    // Per token: another token still gets through.
    assert.equal((await call('/v1/whoami', { token: tokens.viewer.token })).status, 200);
  });

  it('lists requests newest first with filters and pages', async () => {
    await start({}, "results = {'ok': True}");
    const client = new PyexecHttpClient({ url: api!.url, token: tokens.a.token });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await client.submit(sampleRequest({ thread_id: `list-${i}` }))).requestId);
      await sleep(5); // distinct submission times, so newest-first is one order
    }
    await Promise.all(ids.map((id) => client.wait(id, { timeoutMs: 60_000 })));
    const held = await client.submit(sampleRequest({ thread_id: 'list-cancel' }));
    await client.cancel(held.requestId);
    await client.wait(held.requestId, { timeoutMs: 60_000 });
    const page1 = await (await call('/v1/requests?limit=2', { token: tokens.a.token })).json();
    assert.deepEqual(
      page1.items.map((r: RequestView) => r.request_id),
      [held.requestId, ids[4]],
    );
    const page2 = await (
      await call(`/v1/requests?limit=10&cursor=${page1.next_cursor}`, { token: tokens.a.token })
    ).json();
    assert.deepEqual(
      page2.items.map((r: RequestView) => r.request_id),
      [ids[3], ids[2], ids[1], ids[0]],
    );
    assert.equal(page2.next_cursor, null);
    const cancelled = await (await call('/v1/requests?status=cancelled', { token: tokens.a.token })).json();
    assert.deepEqual(
      cancelled.items.map((r: RequestView) => r.request_id),
      [held.requestId],
    );
    const byThread = await (await call('/v1/requests?thread_id=list-2', { token: tokens.a.token })).json();
    assert.deepEqual(
      byThread.items.map((r: RequestView) => r.request_id),
      [ids[2]],
    );
    const snap = await client.status(ids[2]!);
    const since = await (
      await call(`/v1/requests?since=${snap!.submittedAt}&status=succeeded`, { token: tokens.a.token })
    ).json();
    assert.deepEqual(
      since.items.map((r: RequestView) => r.request_id),
      [ids[4], ids[3], ids[2]],
    );
    const until = await (await call(`/v1/requests?until=${snap!.submittedAt}`, { token: tokens.a.token })).json();
    assert.deepEqual(
      until.items.map((r: RequestView) => r.request_id),
      [ids[2], ids[1], ids[0]],
    );
  });

  it('cancels a running request; cancelling it again is a conflict', async () => {
    await start({}, 'import time\nfor i in range(600):\n    print(i, flush=True)\n    time.sleep(0.1)\nresults = {}');
    const client = new PyexecHttpClient({ url: api!.url, token: tokens.a.token });
    const sub = await client.submit(sampleRequest());
    for await (const ev of client.stream(sub.requestId)) if (ev.type === 'stdout') break;
    const res = await call(`/v1/requests/${sub.requestId}/cancel`, { token: tokens.a.token, method: 'POST' });
    assert.equal(res.status, 202);
    assert.equal((await res.json()).cancel_requested, true);
    const done = await client.wait(sub.requestId, { timeoutMs: 60_000 });
    assert.equal(done.kind === 'finished' && done.response.status, 'cancelled');
    await problem(
      await call(`/v1/requests/${sub.requestId}/cancel`, { token: tokens.a.token, method: 'POST' }),
      409,
      'request_finished',
    );
  });

  it('serves an OpenAPI 3.1 document that openapi-spec-validator accepts, with every route', async () => {
    await start();
    const res = await call('/v1/openapi.json');
    const doc = await res.json();
    assert.equal(doc.openapi, '3.1.0');
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/v1/requests',
      '/v1/requests/{id}',
      '/v1/requests/{id}/cancel',
      '/v1/requests/{id}/events',
      '/v1/requests/{id}/figures/{n}',
      '/v1/requests/{id}/wait',
      '/v1/whoami',
    ]);
    const body = doc.paths['/v1/requests'].post.requestBody.content['application/json'].schema;
    assert.deepEqual(body.required.sort(), ['execution_folder_name', 'task_objective', 'user_query']);
    assert.ok(doc.paths['/v1/requests/{id}'].get.responses['404'].content['application/problem+json']);
    // The validator from PyPI (openapi-spec-validator, in .venv/client by scripts/setup.sh).
    const python = path.join(projectRoot, '.venv', 'client', 'bin', 'python');
    const check = (document: unknown) =>
      spawnSync(
        python,
        [
          '-c',
          'import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(sys.stdin))\nprint("valid")',
        ],
        { input: JSON.stringify(document), encoding: 'utf8' },
      );
    const ok = check(doc);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), 'valid');
    // The check can fail: a document with a broken reference is refused.
    const broken = structuredClone(doc);
    broken.paths['/v1/whoami'].get.responses['200'] = { $ref: '#/components/responses/Nope' };
    assert.notEqual(check(broken).status, 0);
  });

  it('the HTTP client raises the same error classes as the Redis client', async () => {
    await start();
    const client = new PyexecHttpClient({ url: api!.url, token: tokens.a.token });
    await assert.rejects(client.submit({ user_query: 'x' }), InvalidRequestError);
    await assert.rejects(client.wait(crypto.randomUUID()), RequestNotFoundError);
    await assert.rejects(
      new PyexecHttpClient({ url: api!.url, token: 'wrong' }).submit(sampleRequest()),
      UnauthorizedError,
    );
    await assert.rejects(
      new PyexecHttpClient({ url: api!.url, token: tokens.viewer.token }).submit(sampleRequest()),
      ForbiddenError,
    );
    assert.equal(await client.status(crypto.randomUUID()), null);
    await assert.rejects(client.resume('no-such-thread'), RequestNotFoundError);
  });
});

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}
