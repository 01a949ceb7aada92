/**
 * The approver's side end to end: a real Redis, the whole fleet (mock generator with fixed code,
 * the real analyzer, the local executor running real Python against a soft IOC), and the approver
 * HTTP API on a real port. Covers what unit tests cannot: that a decision over HTTP releases exactly
 * the code the approver saw, that tampered code never runs, that refused tokens change nothing, that
 * concurrent decisions have one winner, and that the audit trail survives a restart of Redis itself.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { Job } from 'bullmq';
import { ApproverClient } from '../../src/approval/http/client.js';
import { type ApproverApi, startApproverApi } from '../../src/approval/http/server.js';
import { createToken } from '../../src/approval/tokens.js';
import { ApprovalRequiredInterrupt, PyexecClient } from '../../src/client/pyexec-client.js';
import { type SoftIoc, startSoftIoc } from '../../src/epics/soft-ioc.js';
import { silentLogger } from '../../src/logger.js';
import { Metrics } from '../../src/metrics.js';
import type { Stage } from '../../src/queues/envelope.js';
import type { PythonExecutionResponse } from '../../src/queues/result.js';
import { startLocalRedis } from '../../src/redis/redis-server.js';
import { Fleet } from '../../src/workers/fleet.js';
import { sha256 } from '../../src/workers/stage-runtime.js';
import { sampleRequest, stopRedis, type TestBed, testBed, testConfig } from '../support/harness.js';

const alice = createToken('alice', 'approver');
const bob = createToken('bob', 'approver');
const victor = createToken('victor', 'viewer');
const TOKENS = [alice.entry, bob.entry, victor.entry];

let ioc: SoftIoc;
let bed: TestBed | undefined;
let api: ApproverApi | undefined;
const closers: Array<() => Promise<unknown>> = [];

before(async () => {
  ioc = await startSoftIoc();
});
after(async () => {
  await ioc.stop();
  await stopRedis();
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  await api?.close();
  api = undefined;
  await bed?.close();
  bed = undefined;
});

/** Config overrides: every program needs approval, the mock generator writes `code`, tokens for the API. */
function overrides(code: string, pyexec: Record<string, unknown> = {}) {
  return {
    approval: { global_mode: 'selective', capabilities: { python_execution: { enabled: true, mode: 'all_code' } } },
    execution: {
      generators: { mock: { code } },
      modes: { read_only: { environment: ioc.env }, write_access: { environment: ioc.env } },
    },
    pyexec: { approver: { tokens: TOKENS }, ...pyexec },
  };
}

/** A fleet (optionally without some stages), the API, and clients for alice, bob and victor. */
async function setUp(
  code: string,
  options: { stages?: Stage[]; metrics?: Metrics; pyexec?: Record<string, unknown> } = {},
) {
  bed = await testBed(overrides(code, options.pyexec));
  const fleet = await bed.startFleet(options.stages ? { stages: options.stages } : {});
  api = await startApproverApi({
    config: bed.config,
    redisUrl: bed.redisUrl,
    port: 0,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  const as = (t: { token: string }, client = 'api') => new ApproverClient({ url: api!.url, token: t.token, client });
  return { fleet, alice: as(alice, 'cli'), bob: as(bob, 'web'), victor: as(victor) };
}

async function hold(extra: Record<string, unknown> = {}) {
  const { requestId } = await bed!.client.submit(sampleRequest(extra));
  const res = await bed!.client.wait(requestId, { timeoutMs: 60_000, returnOnApproval: true });
  assert.equal(res.kind, 'approval_required', `not held: ${JSON.stringify(res)}`);
  return { requestId, holdJobId: res.kind === 'approval_required' ? res.holdJobId : '' };
}

async function finished(requestId: string): Promise<PythonExecutionResponse> {
  const res = await bed!.client.wait(requestId, { timeoutMs: 60_000 });
  assert.equal(res.kind, 'finished', `not finished: ${JSON.stringify(res)}`);
  return res.kind === 'finished' ? res.response : (undefined as never);
}

async function rawFetch(pathname: string, init: RequestInit = {}) {
  return fetch(`${api!.url}${pathname}`, init);
}

describe('approving over HTTP', () => {
  it('runs exactly the approved code, with the payload, only after the approval', async () => {
    const code = `from epics import caget, caput
caput('MAG:QD1:CURRENT:SP', 0.75, wait=True)
results = {'sp': caget('MAG:QD1:CURRENT:SP'), 'payload': approval_payload}
`;
    const { alice: client } = await setUp(code);
    await ioc.caput('MAG:QD1:CURRENT:SP', 0.1);
    const { requestId, holdJobId } = await hold();
    const shown = await client.show(holdJobId);
    assert.equal(shown.code, code);
    assert.equal(shown.codeSha256, sha256(code));
    assert.equal(shown.mode, 'write_access');
    assert.equal(shown.status, 'held');
    assert.ok(shown.findings.length > 0, 'the write is a finding');
    assert.ok(shown.lines[1]!.severity, 'the caput line is highlighted');
    assert.equal(await ioc.caget('MAG:QD1:CURRENT:SP'), 0.1, 'nothing ran while held');

    const record = await client.approve(holdJobId, {
      codeSha256: shown.codeSha256,
      analysisSha256: shown.analysisSha256,
      payload: { shift: 3 },
    });
    assert.equal(record.approver, 'alice');
    const r = await finished(requestId);
    assert.equal(r.status, 'succeeded', r.reason ?? '');
    assert.equal(r.generated_code, code);
    assert.deepEqual(r.results, { sp: 0.75, payload: { shift: 3 } });
    const approval = r.approval!;
    assert.equal(approval.approver, 'alice');
    assert.equal(approval.code_sha256, shown.codeSha256);
    assert.equal(approval.mode, 'write_access');
    assert.deepEqual(approval.payload, { shift: 3 });
    assert.equal(await ioc.caget('MAG:QD1:CURRENT:SP'), 0.75);
  });

  it('refuses code or a mode changed after the approval: rejected with approval_mismatch, and nothing runs', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-tamper-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    const marker = path.join(dir, 'tampered-code-ran');
    const tampered = `open(${JSON.stringify(marker)}, 'w').write('ran')\nresults = {'tampered': True}\n`;
    const approved = "from epics import caput\ncaput('DEVICE:STATUS', 7, wait=True)\nresults = {'approved': True}\n";
    await ioc.caput('DEVICE:STATUS', 1);
    // No approval-hold worker yet: approved jobs wait, promoted, until we have tampered with them.
    const { alice: client } = await setUp(approved, { stages: ['generation', 'analysis', 'execution', 'result'] });
    const [codeSwap, modeSwap] = await Promise.all([hold(), hold()]);
    for (const { holdJobId } of [codeSwap!, modeSwap!]) {
      const shown = await client.show(holdJobId);
      assert.equal(shown.mode, 'write_access');
      await client.approve(holdJobId, { codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 });
    }
    const queue = bed!.fleets[0]!.queues.approval;
    const a = await Job.fromId(queue, codeSwap!.holdJobId);
    await a!.updateData({ ...a!.data, code: tampered, codeSha256: sha256(tampered) });
    const b = await Job.fromId(queue, modeSwap!.holdJobId);
    await b!.updateData({ ...b!.data, analysis: { ...b!.data.analysis, mode: 'read_only' } });
    await bed!.startFleet({ stages: ['approval'] });

    for (const { requestId } of [codeSwap!, modeSwap!]) {
      const r = await finished(requestId);
      assert.equal(r.status, 'rejected');
      assert.equal(r.detail, 'approval_mismatch', r.reason ?? '');
      assert.equal(r.results, null);
    }
    assert.equal(existsSync(marker), false, 'the tampered code ran');
    assert.equal(await ioc.caget('DEVICE:STATUS'), 1, 'the approved code ran in a mode nobody approved');
  });

  it('refuses an approval of code that changed while the approver looked at it (409), and it stays held', async () => {
    const { alice: client } = await setUp("results = {'v': 1}\n");
    const { requestId, holdJobId } = await hold();
    const shown = await client.show(holdJobId);
    const job = await Job.fromId(bed!.fleets[0]!.queues.approval, holdJobId);
    const swapped = "results = {'v': 2}\n";
    await job!.updateData({ ...job!.data, code: swapped, codeSha256: sha256(swapped) });

    await assert.rejects(
      client.approve(holdJobId, { codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 }),
      (err: Error & { status?: number; code?: string }) => {
        assert.equal(err.status, 409);
        assert.equal(err.code, 'approval_stale');
        return true;
      },
    );
    assert.equal((await client.show(holdJobId)).status, 'held');
    assert.equal((await bed!.client.status(requestId))?.status, 'awaiting_approval');
    assert.equal((await client.audit()).length, 0);
  });
});

describe('rejecting and expiring over HTTP', () => {
  it('reject ends the request rejected, with the reason in the response', async () => {
    const { bob: client } = await setUp("results = {'v': 1}\n");
    const { requestId, holdJobId } = await hold();
    await client.reject(holdJobId, { reason: 'not during beam time' });
    const r = await finished(requestId);
    assert.equal(r.status, 'rejected');
    assert.equal(r.reason, 'not during beam time');
    assert.equal(r.detail, 'approver');
    assert.equal((r.approval as { approver: string }).approver, 'bob');
    assert.equal(r.results, null);
  });

  it('a hold whose deadline passes ends expired, and a later decision is refused (409)', async () => {
    const { alice: client } = await setUp("results = {'v': 1}\n");
    const { requestId, holdJobId } = await hold({ approval_timeout_seconds: 1 });
    const r = await finished(requestId);
    assert.equal(r.status, 'expired');
    const shown = await client.show(holdJobId);
    assert.equal(shown.status, 'expired');
    await assert.rejects(
      client.approve(holdJobId, { codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 }),
      (err: Error & { status?: number; code?: string }) => {
        assert.equal(err.status, 409);
        assert.equal(err.code, 'approval_expired');
        return true;
      },
    );
    assert.deepEqual(
      (await client.audit()).map((e) => [e.holdJobId, e.decision, e.approver]),
      [[holdJobId, 'expired', 'system:deadline']],
    );
  });

  it("gives a hold the configured deadline, and caps a request's own deadline at the maximum", async () => {
    const { alice: client } = await setUp("results = {'v': 1}\n", {
      pyexec: { approval: { default_timeout_seconds: 600, max_timeout_seconds: 900 } },
    });
    const [plain, asked] = await Promise.all([hold(), hold({ approval_timeout_seconds: 86_400 })]);
    const window = async (holdJobId: string) => {
      const h = await client.show(holdJobId);
      return h.deadline - h.heldAt;
    };
    const p = await window(plain.holdJobId);
    const a = await window(asked.holdJobId);
    assert.ok(p > 590_000 && p <= 600_000, `default deadline window ${p} ms`);
    assert.ok(a > 890_000 && a <= 900_000, `capped deadline window ${a} ms`);
  });

  it('a decision on an unknown or already-decided job is a clear error', async () => {
    const { alice: a, bob: b } = await setUp("results = {'v': 1}\n");
    await assert.rejects(
      a.reject('no-such-job', { reason: 'x' }),
      (err: Error & { status?: number }) => err.status === 404,
    );
    const { holdJobId } = await hold();
    await b.reject(holdJobId, { reason: 'no' });
    const shown = await a.show(holdJobId);
    await assert.rejects(
      a.approve(holdJobId, { codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 }),
      (err: Error & { status?: number; message: string }) => {
        assert.equal(err.status, 409);
        assert.match(err.message, /already rejected by bob/);
        return true;
      },
    );
  });
});

describe('cancelled while held', () => {
  it('leaves the list at once, ends cancelled now, and a decision on it is refused (409) and not recorded', async () => {
    const { alice: client, bob } = await setUp("results = {'v': 1}\n");
    const { requestId, holdJobId } = await hold({ approval_timeout_seconds: 3600 });
    const shown = await client.show(holdJobId);
    assert.deepEqual(
      (await client.list()).map((h) => h.holdJobId),
      [holdJobId],
    );
    assert.equal(await bed!.client.cancel(requestId), true);
    // Gone from the list as soon as the cancel is asked, before anything else happened.
    assert.deepEqual(await client.list(), []);
    await assert.rejects(
      bob.approve(holdJobId, { codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 }),
      (err: Error & { status?: number; message: string }) => {
        assert.equal(err.status, 409);
        assert.match(err.message, /cancelled by its producer/);
        return true;
      },
    );
    // Ends now, not at its deadline an hour away.
    const r = await finished(requestId);
    assert.equal(r.status, 'cancelled');
    assert.equal((await client.show(requestId)).status, 'cancelled');
    await assert.rejects(client.reject(holdJobId, { reason: 'late' }), (err: Error & { status?: number }) => {
      assert.equal(err.status, 409);
      return true;
    });
    assert.deepEqual(
      (await client.audit()).map((e) => [e.holdJobId, e.decision, e.approver, e.source]),
      [[holdJobId, 'cancelled', 'system:producer', 'producer']],
    );
  });

  it('a cancel that reaches Redis first wins over an approval racing it: the approval is refused', async () => {
    // No hold worker and no approver API listening: only the arbiter's check of the request stands.
    const { alice: client } = await setUp("results = {'v': 1}\n", {
      stages: ['generation', 'analysis', 'execution', 'result'],
    });
    const { requestId, holdJobId } = await hold();
    const shown = await client.show(holdJobId);
    await api!.close();
    api = undefined;
    const store = bed!.fleets[0]!.store;
    await store.requestCancel(requestId);
    const approvals = bed!.fleets[0]!.approvals;
    await assert.rejects(
      approvals.decide(
        holdJobId,
        { decision: 'approved', approver: 'alice' },
        { expect: { codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 } },
      ),
      /cancelled by its producer/,
    );
    assert.equal(await approvals.decisionOf(holdJobId), null);
    assert.deepEqual(await approvals.auditLog(), []);
    assert.deepEqual(await approvals.listHeld(), []);
  });
});

describe('naming a held job', () => {
  it('by its hold job id, its request id or its thread id', async () => {
    const { alice: client } = await setUp("results = {'v': 1}\n");
    const { requestId, holdJobId } = await hold({ thread_id: 'agent-9-step-2' });
    for (const id of [holdJobId, requestId, 'agent-9-step-2'])
      assert.equal((await client.show(id)).holdJobId, holdJobId);
    const shown = await client.show('agent-9-step-2');
    await client.approve('agent-9-step-2', { codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 });
    assert.equal((await finished(requestId)).status, 'succeeded');
    // Decided: the request and thread ids still name the hold, for its history.
    assert.equal((await client.show(requestId)).status, 'approved');
    await assert.rejects(client.show('no-such-thread'), (err: Error & { status?: number }) => err.status === 404);
  });
});

describe('concurrent decisions', () => {
  it('approve and reject of the same job at once: exactly one wins, the other gets a conflict', async () => {
    const { alice: a, bob: b } = await setUp("results = {'v': 1}\n");
    const jobs = await Promise.all([hold(), hold(), hold()]);
    for (const { requestId, holdJobId } of jobs) {
      const shown = await a.show(holdJobId);
      const outcomes = await Promise.allSettled([
        a.approve(holdJobId, { codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 }),
        b.reject(holdJobId, { reason: 'racing' }),
      ]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      assert.equal(won.length, 1);
      assert.equal(lost.length, 1);
      assert.equal(lost[0]!.reason.status, 409);
      const winner = (won[0] as PromiseFulfilledResult<{ decision: string }>).value.decision;
      const r = await finished(requestId);
      assert.equal(r.status, winner === 'approved' ? 'succeeded' : 'rejected');
    }
    const audit = await a.audit();
    for (const { holdJobId } of jobs) assert.equal(audit.filter((e) => e.holdJobId === holdJobId).length, 1);
  });
});

describe('authentication', () => {
  it('no token, a wrong token, or a viewer token: refused (401/401/403), and the job is still held', async () => {
    const { victor: viewer } = await setUp("results = {'v': 1}\n");
    const { requestId, holdJobId } = await hold();
    const shown = await viewer.show(holdJobId);
    const body = JSON.stringify({ codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 });
    const post = (headers: Record<string, string>) =>
      rawFetch(`/api/held/${holdJobId}/approve`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });

    assert.equal((await post({})).status, 401);
    assert.equal((await post({ authorization: `Bearer ${alice.token}-wrong` })).status, 401);
    assert.equal(
      (await post({ authorization: `Bearer ${alice.entry.token_sha256}` })).status,
      401,
      'the stored hash is not a token',
    );
    assert.equal((await post({ authorization: `Bearer ${victor.token}` })).status, 403);
    assert.equal(
      (
        await rawFetch(`/api/held/${holdJobId}/reject`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${victor.token}` },
          body: '{"reason":"x"}',
        })
      ).status,
      403,
    );
    assert.equal((await rawFetch('/api/held')).status, 401);

    const after = await viewer.show(holdJobId);
    assert.equal(after.status, 'held');
    assert.equal(after.decision, null);
    assert.deepEqual(
      (await viewer.list()).map((h) => h.holdJobId),
      [holdJobId],
    );
    assert.equal((await bed!.client.status(requestId))?.status, 'awaiting_approval');
    assert.equal((await viewer.audit()).length, 0);
  });
});

describe('producer side', () => {
  it('run() raises the interrupt with what the approver sees; a new producer process resumes by thread id', async () => {
    const { alice: client } = await setUp("results = {'payload': approval_payload}\n");
    const first = await PyexecClient.connect({ redisUrl: bed!.redisUrl, config: bed!.config });
    let interrupt: ApprovalRequiredInterrupt | undefined;
    try {
      await first.run(sampleRequest({ thread_id: 'control-room/session-7' }), { timeoutMs: 60_000 });
    } catch (err) {
      interrupt = err as ApprovalRequiredInterrupt;
    }
    await first.close();
    assert.ok(interrupt instanceof ApprovalRequiredInterrupt);
    const shown = await client.show(interrupt.approval.holdJobId);
    assert.equal(interrupt.approval.codeSha256, shown.codeSha256);
    assert.equal(interrupt.approval.mode, shown.mode);
    assert.equal(interrupt.approval.risk, shown.risk);
    assert.equal(interrupt.approval.deadline, shown.deadline);
    assert.equal(interrupt.approval.view?.code, shown.code);
    assert.equal(interrupt.approval.view?.analysisSha256, shown.analysisSha256);
    assert.equal(interrupt.approval.view?.approvalReason, shown.approvalReason);
    assert.deepEqual(
      interrupt.approval.view?.findings,
      shown.findings.map(({ index: _i, ...f }) => f),
    );

    await client.approve(shown.holdJobId, {
      codeSha256: shown.codeSha256,
      analysisSha256: shown.analysisSha256,
      payload: { ok: 1 },
    });
    const second = await PyexecClient.connect({ redisUrl: bed!.redisUrl, config: bed!.config });
    closers.push(() => second.close());
    const res = await second.resume('control-room/session-7', { timeoutMs: 60_000 });
    assert.equal(res.kind, 'finished');
    assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
    assert.deepEqual(res.kind === 'finished' && res.response.results, { payload: { ok: 1 } });
  });
});

describe('live events', () => {
  it('streams an event when a job is held and when it is decided, and closing the API ends open streams', async () => {
    const { alice: client } = await setUp("results = {'v': 1}\n");
    const res = await rawFetch('/api/events', { headers: { authorization: `Bearer ${victor.token}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const until = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}: ${text}`);
        text += value;
      }
    };
    await until(/event: ready/);
    const { holdJobId } = await hold();
    await until(new RegExp(`event: hold\\ndata: \\{"holdJobId":"${holdJobId}","event":"(added|delayed)"`));
    await client.reject(holdJobId, { reason: 'no' });
    await until(new RegExp(`"holdJobId":"${holdJobId}","event":"(waiting|active|completed)"`));
    await api!.close();
    for (;;) if ((await reader.read()).done) break;
  });
});

describe('metrics', () => {
  it('counts held jobs, decisions by outcome and time to decision', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const { alice: client } = await setUp("results = {'v': 1}\n", { metrics });
    const [one] = await Promise.all([hold(), hold()]);
    assert.equal(await api!.approvals.refreshHeldGauge(), 2);
    await client.reject(one!.holdJobId, { reason: 'no' });
    assert.equal(await api!.approvals.refreshHeldGauge(), 1);
    const text = await metrics.registry.metrics();
    assert.match(text, /^pyexec_approval_held_jobs 1$/m);
    assert.match(text, /^pyexec_approval_decisions_total\{decision="rejected"\} 1$/m);
    assert.match(text, /^pyexec_approval_decision_seconds_count\{decision="rejected"\} 1$/m);
  });
});

describe('the audit trail', () => {
  it('records every decision (who, when, hash, payload, from where) and keeps it across a restart of Redis and the API', async () => {
    const server = await startLocalRedis({ appendOnly: true });
    closers.push(() => server.stop());
    const config = testConfig(overrides("results = {'v': 1}\n"));
    closers.push(async () => config.cleanup());
    const start = async () => {
      const fleet = await Fleet.start({ config, redisUrl: server.url, logger: silentLogger(), metricsPort: null });
      const producer = await PyexecClient.connect({ redisUrl: server.url, config });
      const http = await startApproverApi({ config, redisUrl: server.url, port: 0 });
      return {
        fleet,
        producer,
        http,
        close: async () => Promise.allSettled([http.close(), producer.close(), fleet.close()]),
      };
    };
    const first = await start();
    const held = async (extra: Record<string, unknown> = {}) => {
      const { requestId } = await first.producer.submit(sampleRequest(extra));
      const res = await first.producer.wait(requestId, { timeoutMs: 60_000, returnOnApproval: true });
      assert.equal(res.kind, 'approval_required');
      return { requestId, holdJobId: res.kind === 'approval_required' ? res.holdJobId : '' };
    };
    const a = new ApproverClient({ url: first.http.url, token: alice.token, client: 'cli' });
    const b = new ApproverClient({ url: first.http.url, token: bob.token, client: 'web' });
    const [x, y, z] = await Promise.all([held(), held(), held({ approval_timeout_seconds: 1 })]);
    const sx = await a.show(x!.holdJobId);
    await a.approve(x!.holdJobId, {
      codeSha256: sx.codeSha256,
      analysisSha256: sx.analysisSha256,
      payload: { ticket: 'OPS-1' },
    });
    await b.reject(y!.holdJobId, { reason: 'wrong magnet' });
    for (const { requestId } of [x!, y!, z!]) await first.producer.wait(requestId, { timeoutMs: 60_000 });
    const before = await a.audit();
    await first.close();

    const byJob = new Map(before.map((e) => [e.holdJobId, e]));
    assert.equal(before.length, 3);
    const ex = byJob.get(x!.holdJobId)!;
    assert.equal(ex.decision, 'approved');
    assert.equal(ex.approver, 'alice');
    assert.equal(ex.codeSha256, sx.codeSha256);
    assert.equal(ex.analysisSha256, sx.analysisSha256);
    assert.deepEqual(ex.payload, { ticket: 'OPS-1' });
    assert.equal(ex.source, 'cli');
    assert.equal(ex.address, '127.0.0.1');
    assert.equal(ex.requestId, x!.requestId);
    assert.ok(ex.decidedAt > 0);
    assert.deepEqual(
      [
        byJob.get(y!.holdJobId)!.decision,
        byJob.get(y!.holdJobId)!.approver,
        byJob.get(y!.holdJobId)!.reason,
        byJob.get(y!.holdJobId)!.source,
      ],
      ['rejected', 'bob', 'wrong magnet', 'web'],
    );
    assert.deepEqual([byJob.get(z!.holdJobId)!.decision, byJob.get(z!.holdJobId)!.source], ['expired', 'deadline']);

    await server.restart();
    const second = await start();
    closers.push(() => second.close());
    const after = await new ApproverClient({ url: second.http.url, token: victor.token }).audit();
    assert.deepEqual(after, before);
  });
});
