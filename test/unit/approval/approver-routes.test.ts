import assert from 'node:assert/strict';
import { after, beforeEach, describe, it } from 'node:test';
import type { DecisionContext, HeldJobDetail, RequestOutcome } from '../../../src/approval/approval-service.js';
import { ApprovalStaleError } from '../../../src/approval/errors.js';
import type { ApprovalDesk } from '../../../src/approval/http/routes.js';
import { buildApproverApp } from '../../../src/approval/http/routes.js';
import { createToken, TokenAuthenticator } from '../../../src/approval/tokens.js';
import { ApprovalConflictError, ApprovalExpiredError, ApprovalNotFoundError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/logger.js';
import type { ApprovalDecisionInput } from '../../../src/queues/approval.js';
import type { ApprovalRecord } from '../../../src/queues/envelope.js';

const HEX = 'a'.repeat(64);
const alice = createToken('alice', 'approver');
const victor = createToken('victor', 'viewer');
const petra = createToken('petra', 'producer');

const held: HeldJobDetail = {
  holdJobId: 'req-approval-1',
  requestId: '00000000-0000-4000-8000-000000000000',
  threadId: 't1',
  userQuery: 'ramp QF1',
  taskObjective: 'Set QF1',
  request: {
    user_query: 'ramp QF1',
    task_objective: 'Set QF1',
    execution_folder_name: 'x',
  } as HeldJobDetail['request'],
  code: "from epics import caput\ncaput('QF1', 1)\n",
  codeSha256: HEX,
  analysis: {
    syntaxOk: true,
    hasWrites: true,
    hasReads: false,
    risk: 'high',
    findings: [{ rule: 'epics-write', severity: 'high', line: 2, column: 0, message: 'caput writes a PV' }],
    writes: [{ line: 2, column: 0, call: 'epics.caput', pvs: ['QF1'], target: "'QF1'", value: '1' }],
    mode: 'write_access',
    approvalRequired: true,
    approvalReason: 'Code contains control system write operations',
    reportSha256: 'b'.repeat(64),
    analyzer: 'python-ast',
  },
  analysisSha256: 'b'.repeat(64),
  mode: 'write_access',
  risk: 'high',
  deadline: Date.now() + 60_000,
  heldAt: Date.now(),
  submittedAt: Date.now() - 1000,
  requester: 'ops-agent',
  attempt: 1,
  status: 'held',
  decision: null,
};

/** A fake desk that records decisions and throws what it is told to. */
class FakeDesk implements ApprovalDesk {
  decisions: Array<{ id: string; input: ApprovalDecisionInput; context: DecisionContext }> = [];
  failWith: Error | null = null;
  async listHeld() {
    return [held];
  }
  async show(id: string) {
    if (id !== held.holdJobId) throw new ApprovalNotFoundError(`no held job ${id}`);
    return held;
  }
  async decide(id: string, input: ApprovalDecisionInput, context: DecisionContext = {}): Promise<ApprovalRecord> {
    if (this.failWith) throw this.failWith;
    this.decisions.push({ id, input, context });
    return {
      holdJobId: id,
      decision: input.decision,
      approver: input.approver,
      decidedAt: 1,
      codeSha256: HEX,
      analysisSha256: HEX,
      mode: 'write_access',
    };
  }
  auditFilters: unknown[] = [];
  async auditLog(filter: unknown = {}) {
    this.auditFilters.push(filter);
    return [];
  }
  /** The thread id `t1` and the request id name the one held job. */
  async resolve(id: string) {
    if (id === held.threadId || id === held.requestId) return held.holdJobId;
    return id;
  }
  async outcome(requestId: string): Promise<RequestOutcome> {
    if (requestId !== held.requestId) throw new ApprovalNotFoundError(`no request ${requestId}`);
    return {
      requestId,
      threadId: 't1',
      status: 'executing',
      submittedAt: 1,
      updatedAt: 2,
      events: [{ at: 2, type: 'status', status: 'executing' }],
      response: null,
    };
  }
}

let desk = new FakeDesk();
const pvReads: string[][] = [];
const app = buildApproverApp({
  desk: {
    listHeld: () => desk.listHeld(),
    show: (id) => desk.show(id),
    resolve: (id) => desk.resolve(id),
    decide: (...a) => desk.decide(...a),
    auditLog: (f) => desk.auditLog(f),
    outcome: (id) => desk.outcome(id),
  },
  auth: new TokenAuthenticator([alice.entry, victor.entry, petra.entry]),
  logger: silentLogger(),
  readPvs: async (names) => {
    pvReads.push([...names]);
    return Object.fromEntries(names.map((n) => [n, { ok: true as const, value: 0.5, text: '0.5000', at: 3 }]));
  },
});
after(() => app.close());
beforeEach(() => {
  desk = new FakeDesk();
});

const bearer = (t: { token: string }) => ({ authorization: `Bearer ${t.token}` });
const approveBody = { codeSha256: HEX, analysisSha256: 'b'.repeat(64) };

describe('approver API', () => {
  describe('without a valid token', () => {
    it('answers 401 with a Bearer challenge on every /api route and decides nothing', async () => {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${alice.token}` }]) {
        for (const [method, url] of [
          ['GET', '/api/held'],
          ['GET', '/api/audit'],
          ['POST', '/api/held/req-approval-1/approve'],
        ] as const) {
          const res = await app.inject({
            method,
            url,
            headers,
            ...(method === 'POST' ? { payload: approveBody } : {}),
          });
          assert.equal(res.statusCode, 401, `${method} ${url} ${JSON.stringify(headers)}`);
          assert.match(String(res.headers['www-authenticate']), /^Bearer/);
        }
      }
      assert.equal(desk.decisions.length, 0);
    });

    it('refuses percent-encoded and odd spellings of API paths too (auth follows the matched route)', async () => {
      for (const [method, url] of [
        ['GET', '/%61pi/held'],
        ['POST', '/%61pi/held/req-approval-1/approve'],
        ['GET', '/api/held/'],
        ['GET', '/./api/held'],
        ['GET', '/no-such-route'],
      ] as const) {
        const res = await app.inject({ method, url, ...(method === 'POST' ? { payload: approveBody } : {}) });
        assert.equal(res.statusCode, 401, `${method} ${url}: ${res.body}`);
      }
      assert.equal(desk.decisions.length, 0);
    });

    it('still serves the page (it holds no data), with a strict content security policy', async () => {
      const res = await app.inject({ method: 'GET', url: '/' });
      assert.equal(res.statusCode, 200);
      assert.match(res.body, /pyexec approvals/);
      assert.match(String(res.headers['content-security-policy']), /script-src 'self'/);
      assert.equal((await app.inject({ method: 'GET', url: '/app.js' })).statusCode, 200);
    });
  });

  describe('with a viewer token', () => {
    it('lists and shows held jobs with numbered, highlighted lines', async () => {
      const list = await app.inject({ method: 'GET', url: '/api/held', headers: bearer(victor) });
      assert.equal(list.statusCode, 200);
      assert.equal(list.json().held[0].holdJobId, 'req-approval-1');
      assert.equal(list.json().held[0].code, undefined);
      const show = await app.inject({ method: 'GET', url: '/api/held/req-approval-1', headers: bearer(victor) });
      const d = show.json();
      assert.equal(d.mode, 'write_access');
      assert.deepEqual(d.lines[1], { number: 2, text: "caput('QF1', 1)", findings: [0], severity: 'high' });
      assert.equal(d.analysisSha256, 'b'.repeat(64));
    });

    it('leads with what the job writes: each write with its PV and value, and the PVs in the list', async () => {
      const list = (await app.inject({ method: 'GET', url: '/api/held', headers: bearer(victor) })).json().held[0];
      assert.deepEqual(list.writePvs, ['QF1']);
      assert.equal(list.writeCount, 1);
      assert.equal(list.requester, 'ops-agent');
      assert.equal(list.threadId, 't1');
      const d = (await app.inject({ method: 'GET', url: '/api/held/req-approval-1', headers: bearer(victor) })).json();
      assert.deepEqual(d.writes, [
        { line: 2, call: 'epics.caput', pvs: ['QF1'], target: "'QF1'", value: '1', resolved: true },
      ]);
    });

    it('reads the current values of exactly the PVs the job writes', async () => {
      pvReads.length = 0;
      const res = await app.inject({ method: 'GET', url: '/api/held/req-approval-1/pvs', headers: bearer(victor) });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), {
        available: true,
        readings: { QF1: { ok: true, value: 0.5, text: '0.5000', at: 3 } },
      });
      assert.deepEqual(pvReads, [['QF1']]);
    });

    it('shows how a request went, and 404 for an unknown one', async () => {
      const ok = await app.inject({ method: 'GET', url: `/api/requests/${held.requestId}`, headers: bearer(victor) });
      assert.equal(ok.json().status, 'executing');
      const missing = await app.inject({ method: 'GET', url: '/api/requests/nope', headers: bearer(victor) });
      assert.equal(missing.statusCode, 404);
    });

    it('passes the history filters through, and refuses an unknown outcome (400)', async () => {
      const res = await app.inject({
        method: 'GET',
        url: '/api/audit?decision=approved,cancelled&approver=alice&q=t1&since=5&limit=7',
        headers: bearer(victor),
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(desk.auditFilters.at(-1), {
        limit: 7,
        decisions: ['approved', 'cancelled'],
        approver: 'alice',
        text: 't1',
        since: 5,
      });
      const bad = await app.inject({ method: 'GET', url: '/api/audit?decision=maybe', headers: bearer(victor) });
      assert.equal(bad.statusCode, 400);
    });

    it('may not decide: 403, and nothing is decided', async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/held/req-approval-1/approve',
        headers: bearer(victor),
        payload: approveBody,
      });
      assert.equal(res.statusCode, 403);
      const rej = await app.inject({
        method: 'POST',
        url: '/api/held/req-approval-1/reject',
        headers: bearer(victor),
        payload: { reason: 'no' },
      });
      assert.equal(rej.statusCode, 403);
      assert.equal(desk.decisions.length, 0);
    });
  });

  describe('with a producer token (for the producer HTTP API)', () => {
    it('reads nothing and decides nothing: 403 on every /api route', async () => {
      for (const [method, url] of [
        ['GET', '/api/held'],
        ['GET', '/api/held/req-approval-1'],
        ['GET', '/api/audit'],
        ['POST', '/api/held/req-approval-1/approve'],
      ] as const) {
        const res = await app.inject({
          method,
          url,
          headers: bearer(petra),
          ...(method === 'POST' ? { payload: approveBody } : {}),
        });
        assert.equal(res.statusCode, 403, `${method} ${url}`);
      }
      assert.equal(desk.decisions.length, 0);
    });
  });

  describe('with an approver token', () => {
    it('approves as the token’s name, bound to the hashes the approver was shown, with source and address', async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/held/req-approval-1/approve',
        headers: { ...bearer(alice), 'x-pyexec-client': 'cli' },
        payload: { ...approveBody, payload: { note: 'ok' } },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(desk.decisions.length, 1);
      const { id, input, context } = desk.decisions[0]!;
      assert.equal(id, 'req-approval-1');
      assert.deepEqual(input, { decision: 'approved', approver: 'alice', source: 'cli', payload: { note: 'ok' } });
      assert.deepEqual(context.expect, approveBody);
      assert.equal(context.address, '127.0.0.1');
    });

    it('takes a request id or a thread id for the held job it names', async () => {
      for (const id of [held.requestId, 't1']) {
        const res = await app.inject({
          method: 'POST',
          url: `/api/held/${id}/reject`,
          headers: bearer(alice),
          payload: { reason: 'not now' },
        });
        assert.equal(res.statusCode, 200, res.body);
      }
      assert.deepEqual(
        desk.decisions.map((d) => d.id),
        ['req-approval-1', 'req-approval-1'],
      );
    });

    it('refuses an approval that does not name the code and analysis hashes (400)', async () => {
      for (const payload of [{}, { codeSha256: HEX }, { ...approveBody, approver: 'mallory' }]) {
        const res = await app.inject({
          method: 'POST',
          url: '/api/held/req-approval-1/approve',
          headers: bearer(alice),
          payload,
        });
        assert.equal(res.statusCode, 400, JSON.stringify(payload));
      }
      assert.equal(desk.decisions.length, 0);
    });

    it('refuses a rejection without a reason (400)', async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/held/req-approval-1/reject',
        headers: bearer(alice),
        payload: { reason: '  ' },
      });
      assert.equal(res.statusCode, 400);
      assert.equal(desk.decisions.length, 0);
    });

    it('maps decision errors to clear statuses', async () => {
      const cases: Array<[Error, number, string]> = [
        [new ApprovalNotFoundError('no held job x'), 404, 'approval_not_found'],
        [new ApprovalExpiredError('expired'), 409, 'approval_expired'],
        [new ApprovalConflictError('already approved by bob'), 409, 'approval_conflict'],
        [new ApprovalStaleError('the code changed'), 409, 'approval_stale'],
        [new Error('redis exploded'), 500, 'internal_error'],
      ];
      for (const [err, status, code] of cases) {
        desk.failWith = err;
        const res = await app.inject({
          method: 'POST',
          url: '/api/held/req-approval-1/approve',
          headers: bearer(alice),
          payload: approveBody,
        });
        assert.equal(res.statusCode, status, err.message);
        assert.equal(res.json().error.code, code);
        if (status === 500) assert.equal(res.json().error.message, 'internal error');
      }
    });

    it('answers 404 for an unknown held job', async () => {
      const res = await app.inject({ method: 'GET', url: '/api/held/nope', headers: bearer(alice) });
      assert.equal(res.statusCode, 404);
      assert.match(res.json().error.message, /no held job nope/);
    });
  });
});
