/**
 * The fleet at scale, small enough for CI: two worker processes per stage (ten OS processes) on
 * one redis-server, 200 requests. None is lost, none runs twice, and the metrics of all the
 * processes add up to what happened. bench/scale.bench.ts runs the same with 1,000 requests.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runScale } from '../support/ops-scale.js';

describe('ten worker processes, two per stage, on one Redis', () => {
  it('end 200 requests exactly once each, run each one’s code once, and their metrics add up', async () => {
    const r = await runScale({ processesPerStage: 2, requests: 200 });
    assert.equal(r.lost, 0, 'every request ended');
    assert.deepEqual(r.statuses, { succeeded: 200 });
    assert.equal(r.notExecuted, 0);
    assert.equal(r.executedTwice, 0);
    for (const [name, { summed, expected }] of Object.entries(r.metrics)) assert.equal(summed, expected, name);
    assert.deepEqual(r.exitCodes, Array(10).fill(0), 'every process drained and exited 0 on SIGTERM');
  });
});
