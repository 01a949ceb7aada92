/**
 * The whole pipeline on a real Redis server (started by the harness), with the mock generator, the
 * real analyzer and the local executor (a real Python subprocess), and a real soft IOC for the
 * EPICS behaviours. Covers what unit tests cannot: hand-offs between queues, retry budgets in job
 * data, approval holds and decisions, terminal states as the producer sees them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, afterEach, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ApprovalRequiredInterrupt } from '../../src/client/pyexec-client.js';
import { type SoftIoc, startSoftIoc } from '../../src/epics/soft-ioc.js';
import { InvalidRequestError } from '../../src/errors.js';
import { pythonExecutable } from '../../src/python-env.js';
import { STAGES } from '../../src/queues/envelope.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';

const run = promisify(execFile);
let ioc: SoftIoc;
let bed: TestBed | undefined;

before(async () => {
  ioc = await startSoftIoc();
});
after(async () => {
  await ioc.stop();
  await stopRedis();
});
afterEach(async () => {
  await bed?.close();
  bed = undefined;
});

function epicsModes() {
  return { read_only: { environment: ioc.env }, write_access: { environment: ioc.env } };
}

async function runBehavior(behavior: string, overrides: Record<string, unknown> = {}) {
  bed = await testBed({
    execution: { generators: { mock: { behavior } }, modes: epicsModes() },
    ...overrides,
  });
  await bed.startFleet();
  const { requestId } = await bed.client.submit(sampleRequest());
  const res = await bed.client.wait(requestId, { timeoutMs: 60_000 });
  assert.equal(res.kind, 'finished', `request did not finish: ${JSON.stringify(res)}`);
  return res.kind === 'finished' ? res.response : (undefined as never);
}

describe('pipeline with the mock generator', () => {
  describe('when the code succeeds', () => {
    it('ends succeeded with the results, the code, and a valid nbformat v4 notebook', async () => {
      const r = await runBehavior('success');
      assert.equal(r.status, 'succeeded');
      assert.equal((r.results as { value: number }).value, 42);
      assert.equal((r.results as { status: string }).status, 'success');
      assert.match(r.generated_code ?? '', /result_value = 42/);
      assert.equal(r.generation_attempt, 1);
      assert.deepEqual(r.error_chain, []);
      assert.ok(r.notebook_path && existsSync(r.notebook_path));
      for (const f of ['code.py', 'results.json', 'context.json', 'analysis.json', 'response.json']) {
        assert.ok(existsSync(`${r.execution_folder}/${f}`), `${f} missing in the execution folder`);
      }
      const check = await run(pythonExecutable(), [
        '-c',
        'import sys, nbformat; nb = nbformat.read(sys.argv[1], as_version=4); nbformat.validate(nb); print(nb.nbformat, len(nb.cells))',
        r.notebook_path,
      ]);
      assert.match(check.stdout, /^4 \d+/);
      assert.deepEqual(
        r.timings.map((t) => (t as { stage: string }).stage),
        ['generation', 'analysis', 'execution', 'result'],
      );
    });
  });

  describe('when the code has a syntax error every time', () => {
    it('regenerates within max_generation_retries and fails with every syntax error in the chain', async () => {
      const r = await runBehavior('syntax_error');
      assert.equal(r.status, 'failed');
      assert.equal(r.detail, 'generation_retries_exhausted');
      assert.equal(r.error_chain.length, 3, 'max_generation_retries 2 → 3 attempts');
      for (const e of r.error_chain) {
        assert.equal(e.stage, 'analysis');
        assert.equal(e.error_type, 'syntax');
        assert.match(e.message, /line \d+/);
      }
      assert.equal(r.generation_attempt, 3);
      assert.equal(r.results, null);
    });
  });

  describe('when the code raises at run time every time', () => {
    it('exhausts max_execution_retries and fails with the whole error chain', async () => {
      const r = await runBehavior('runtime_error');
      assert.equal(r.status, 'failed');
      assert.equal(r.detail, 'execution_retries_exhausted');
      assert.equal(r.error_chain.length, 3);
      for (const e of r.error_chain) {
        assert.equal(e.error_type, 'runtime');
        assert.match(e.message, /ZeroDivisionError/);
        assert.match(e.traceback ?? '', /ZeroDivisionError/);
        assert.match(e.failed_code ?? '', /100 \/ 0/);
      }
      assert.deepEqual(
        r.error_chain.map((e) => e.attempt),
        [1, 2, 3],
      );
    });
  });

  describe('when the code never assigns results', () => {
    it('treats the missing results as a code error and fails after the retries', async () => {
      const r = await runBehavior('missing_results');
      assert.equal(r.status, 'failed');
      assert.ok(r.error_chain.length >= 1);
      assert.ok(r.error_chain.every((e) => e.error_type === 'missing_results'));
    });
  });

  describe('when the first code raises and the generator learns from the error', () => {
    it('error_aware: regenerates with the error chain and succeeds', async () => {
      const r = await runBehavior('error_aware');
      assert.equal(r.status, 'succeeded');
      assert.equal(r.generation_attempt, 2);
      assert.equal(r.error_chain.length, 1);
      assert.match(r.error_chain[0]!.message, /NameError/);
      assert.deepEqual((r.results as { mean: number }).mean, 2);
    });
  });

  describe('when a syntax error is followed by good code (a code sequence)', () => {
    it('recovers on the second attempt', async () => {
      const r = await runBehavior('success', {
        execution: { generators: { mock: { sequence: ['def broken(', "results = {'value': 7}"] } } },
      });
      assert.equal(r.status, 'succeeded');
      assert.equal(r.generation_attempt, 2);
      assert.deepEqual(r.results, { value: 7 });
      assert.equal(r.error_chain[0]?.error_type, 'syntax');
    });
  });

  describe('EPICS behaviours against the soft IOC', () => {
    it('epics_read returns the IOC values in read-only mode', async () => {
      await ioc.caput('DEVICE:PV:SETPOINT', 12.5);
      const r = await runBehavior('epics_read');
      assert.equal(r.status, 'succeeded');
      assert.equal(r.execution_mode, 'read_only');
      assert.deepEqual(r.results, { value: 12.5, status: 1, operation: 'read_only' });
    });

    it('epics_write runs in write_access mode and changes the PV at the IOC', async () => {
      await ioc.caput('DEVICE:PV:SETPOINT', 10);
      const r = await runBehavior('epics_write');
      assert.equal(r.status, 'succeeded', JSON.stringify(r.error_chain));
      assert.equal(r.execution_mode, 'write_access');
      assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 11);
      assert.equal((r.results as { old_value: number }).old_value, 10);
    });

    it('epics_write is refused when control-system writes are disabled, and the PV is unchanged', async () => {
      await ioc.caput('DEVICE:PV:SETPOINT', 10);
      const r = await runBehavior('epics_write', { control_system: { writes_enabled: false } });
      assert.equal(r.status, 'rejected');
      assert.equal(r.reason, 'EPICS writes blocked by configuration');
      assert.equal(r.generation_attempt, 1, 'a refusal is never regenerated around');
      assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 10);
    });
  });

  describe('when the code spawns processes (security_risk)', () => {
    it('is held for a person under epics_writes: starting a process is a possible write', async () => {
      bed = await testBed({
        approval: {
          global_mode: 'selective',
          capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } },
        },
        execution: { generators: { mock: { behavior: 'security_risk' } }, modes: epicsModes() },
      });
      await bed.startFleet();
      const { requestId } = await bed.client.submit(sampleRequest());
      const res = await bed.client.wait(requestId, { timeoutMs: 30_000, returnOnApproval: true });
      assert.equal(res.kind, 'approval_required', JSON.stringify(res));
      if (res.kind !== 'approval_required') return;
      assert.equal(res.mode, 'write_access');
      assert.ok(
        res.view?.findings.some((f) => f.rule === 'epics-process'),
        JSON.stringify(res.view?.findings),
      );
    });
    it('with approval off it runs in write mode, confined: listing / is refused by the operating system', async () => {
      const r = await runBehavior('security_risk');
      assert.equal(r.status, 'failed');
      assert.equal(r.execution_mode, 'write_access');
      assert.equal(r.results, null);
      assert.match(JSON.stringify(r.error_chain), /PermissionError: \[Errno 13\] Permission denied: '\/'/);
    });
  });
});

describe('approval', () => {
  async function held(mode = 'all_code', behavior = 'success', extra: Record<string, unknown> = {}) {
    bed = await testBed({
      approval: { global_mode: 'selective', capabilities: { python_execution: { enabled: true, mode } } },
      execution: { generators: { mock: { behavior } }, modes: epicsModes() },
    });
    const fleet = await bed.startFleet();
    const { requestId } = await bed.client.submit(sampleRequest(extra));
    const res = await bed.client.wait(requestId, { timeoutMs: 30_000, returnOnApproval: true });
    return { fleet, requestId, res };
  }

  it('holds code when the policy asks, then runs it after approval, with the payload in the response', async () => {
    const { fleet, requestId, res } = await held();
    assert.equal(res.kind, 'approval_required');
    if (res.kind !== 'approval_required') return;
    const list = await fleet.approvals.listHeld();
    assert.equal(list.length, 1);
    assert.equal(list[0]!.holdJobId, res.holdJobId);
    assert.match(list[0]!.code, /result_value = 42/);
    await fleet.approvals.decide(res.holdJobId, { decision: 'approved', approver: 'alice', payload: { note: 'ok' } });
    const done = await bed!.client.wait(requestId, { timeoutMs: 30_000 });
    assert.equal(done.kind, 'finished');
    if (done.kind !== 'finished') return;
    assert.equal(done.response.status, 'succeeded');
    assert.equal((done.response.approval as { approver: string }).approver, 'alice');
    assert.deepEqual((done.response.approval as { payload: unknown }).payload, { note: 'ok' });
  });

  it('ends rejected, with the reason, when the approver rejects', async () => {
    const { fleet, requestId, res } = await held();
    if (res.kind !== 'approval_required') assert.fail('not held');
    await fleet.approvals.decide(res.holdJobId, {
      decision: 'rejected',
      approver: 'bob',
      reason: 'not during beam time',
    });
    const done = await bed!.client.wait(requestId, { timeoutMs: 30_000 });
    assert.equal(done.kind === 'finished' && done.response.status, 'rejected');
    assert.equal(done.kind === 'finished' && done.response.reason, 'not during beam time');
  });

  it('ends expired when nobody decides before the deadline', async () => {
    const { requestId, res } = await held('all_code', 'success', { approval_timeout_seconds: 1 });
    assert.equal(res.kind, 'approval_required');
    const done = await bed!.client.wait(requestId, { timeoutMs: 30_000 });
    assert.equal(done.kind === 'finished' && done.response.status, 'expired');
  });

  it('epics_writes mode holds a write but lets a read run without a hold', async () => {
    const write = await held('epics_writes', 'epics_write');
    assert.equal(write.res.kind, 'approval_required');
    await bed!.close();
    const read = await held('epics_writes', 'epics_read');
    assert.equal(read.res.kind, 'finished');
  });

  it('mode disabled skips the hold entirely', async () => {
    const { res } = await held('disabled', 'epics_write');
    assert.equal(res.kind, 'finished');
    assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
    assert.equal(res.kind === 'finished' && res.response.approval, null);
  });

  it('client.run raises the approval interrupt, and resume by thread id gets the result after approval', async () => {
    bed = await testBed({ approval: { global_mode: 'all_capabilities' } });
    const fleet = await bed.startFleet();
    let interrupt: ApprovalRequiredInterrupt | undefined;
    try {
      await bed.client.run(sampleRequest({ thread_id: 'thread-resume-1' }), { timeoutMs: 30_000 });
    } catch (err) {
      interrupt = err as ApprovalRequiredInterrupt;
    }
    assert.ok(interrupt instanceof ApprovalRequiredInterrupt);
    await fleet.approvals.decide(interrupt.approval.holdJobId, { decision: 'approved', approver: 'carol' });
    const res = await bed.client.resume('thread-resume-1', { timeoutMs: 30_000 });
    assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
  });
});

describe('producer input', () => {
  it('refuses an invalid request with a clear error and enqueues nothing', async () => {
    bed = await testBed();
    await assert.rejects(bed.client.submit({ user_query: 'x', execution_folder_name: 'bad name!' }), (err: Error) => {
      assert.ok(err instanceof InvalidRequestError);
      assert.match(err.message, /task_objective/);
      assert.match(err.message, /execution_folder_name/);
      return true;
    });
    await assert.rejects(
      bed.client.submit({ ...sampleRequest(), unexpected_field: 1 }),
      /unexpected_field|Unrecognized/,
    );
    const fleet = await bed.startFleet();
    for (const stage of STAGES) {
      const counts = await fleet.queues[stage].getJobCounts();
      assert.equal(
        Object.values(counts).reduce((a, b) => a + b, 0),
        0,
        `${stage} has jobs`,
      );
    }
  });

  it('returns the same request for the same thread id, and runs it once', async () => {
    bed = await testBed();
    const a = await bed.client.submit(sampleRequest({ thread_id: 'same-thread' }));
    const b = await bed.client.submit(sampleRequest({ thread_id: 'same-thread' }));
    assert.equal(a.requestId, b.requestId);
    assert.equal(a.created, true);
    assert.equal(b.created, false);
    const fleet = await bed.startFleet();
    const res = await bed.client.wait(a.requestId, { timeoutMs: 30_000 });
    assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
    const counts = await fleet.queues.generation.getJobCounts('completed', 'waiting', 'active');
    assert.equal(counts['completed'], 1);
  });

  it('cancels a request that has not run yet', async () => {
    bed = await testBed();
    const { requestId } = await bed.client.submit(sampleRequest());
    assert.equal(await bed.client.cancel(requestId), true);
    await bed.startFleet();
    const res = await bed.client.wait(requestId, { timeoutMs: 30_000 });
    assert.equal(res.kind === 'finished' && res.response.status, 'cancelled');
  });
});

describe('result files', () => {
  it('captures stdout and matplotlib figures into figures/ and the notebook', async () => {
    const code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nprint('plotted')\nresults = {'n': 3}";
    const r = await runBehavior('success', { execution: { generators: { mock: { code } } } });
    assert.equal(r.status, 'succeeded');
    assert.match(r.execution_stdout, /plotted/);
    assert.equal(r.figure_count, 1);
    assert.match(r.figure_paths[0]!, /figures\/figure_01\.png$/);
    const nb = JSON.parse(readFileSync(r.notebook_path!, 'utf8'));
    const outputs = nb.cells.flatMap(
      (c: { outputs?: { output_type: string; data?: Record<string, unknown> }[] }) => c.outputs ?? [],
    );
    assert.ok(outputs.some((o: { data?: Record<string, unknown> }) => o.data?.['image/png']));
  });
});
