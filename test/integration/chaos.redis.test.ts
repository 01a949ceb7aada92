/**
 * The fleet under kill -9, sized for CI: one OS process per stage (two for execution) on real
 * parts (redis-server with AOF, Jupyter servers and kernels, the soft IOC, the approver API), while
 * requests flow — reads, writes approved (or rejected) through the approver API, code errors —
 * each stage's process is killed while it works (execution while its code runs), redis-server is
 * killed and restarted from its append-only file, a Jupyter server is killed with its kernels.
 * Every request ends, none is lost, none ends twice, and no write reaches the IOC twice (each
 * write program writes a value of its own, counted in the IOC's write log). bench/chaos.bench.ts
 * is the longer run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeReport, runChaos } from '../support/chaos.js';

describe('the fleet under chaos', () => {
  it('ends every request once, loses none, and runs no write twice', { timeout: 600_000 }, async () => {
    const r = await runChaos({
      requests: 30,
      writeEvery: 3,
      errorEvery: 10,
      rejectEvery: 4,
      stageKills: 1,
      executionKills: 2,
      redisRestarts: 1,
      jupyterKills: 1,
      executionProcesses: 2,
      jupyterServers: 2,
      sparesPerMode: 1,
      submitGapMs: 200,
      killGapMs: 1500,
      finishTimeoutMs: 240_000,
      seed: 15,
      log: (line) => process.env['PYEXEC_CHAOS_LOG'] && process.stderr.write(`${line}\n`),
    });
    const summary = describeReport(r);
    assert.deepEqual(r.lost, [], `lost: ${summary}`);
    assert.deepEqual(r.endedTwice, [], summary);
    assert.deepEqual(r.writesRunTwice, [], summary);
    assert.deepEqual(r.succeededWritesNotOnce, [], summary);
    assert.deepEqual(r.refusedWritesRun, [], summary);
    assert.deepEqual(r.readOnlyNeedsReview, [], summary);
    // Every kill of the plan happened, and the stage kills hit processes at work.
    assert.deepEqual(r.kills, {
      generation: 1,
      analysis: 1,
      approval: 1,
      result: 1,
      execution: 2,
      redis: 1,
      jupyter: 1,
    });
    assert.equal(r.killsWhileWorking['execution'], 2, `execution killed while its code ran: ${summary}`);
    for (const stage of ['generation', 'analysis', 'result'])
      assert.equal(r.killsWhileWorking[stage], 1, `${stage} killed while it worked: ${summary}`);
    assert.ok((r.byStatus['succeeded'] ?? 0) >= r.requests / 2, `most requests succeed: ${summary}`);
    assert.ok(r.rejected >= 1 && r.approved >= 1, summary);
  });
});
