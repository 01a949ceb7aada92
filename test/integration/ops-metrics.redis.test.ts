/**
 * `/metrics` of a fleet process on a real Redis, read over HTTP as Prometheus reads it: after a
 * handful of requests that succeed, regenerate, retry, wait for approval and get rejected, each
 * metric family of issue #7 is there and its values match what happened (a retry counted once, a
 * decision once, tokens per generation). Unit tests cannot see the scrape-time queue gauges, the
 * approval hold as a queue state, or BullMQ's own family merged into one exposition.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Metrics } from '../../src/metrics.js';
import type { Fleet } from '../../src/workers/fleet.js';
import { eventually, sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';
import {
  PatternAnalyzer,
  parseMetrics,
  RecordingExecutor,
  ScriptedGenerator,
  simplePolicy,
  TOKENS,
} from '../support/ops-fakes.js';

let bed: TestBed | undefined;
let redis: Redis | undefined;
after(() => stopRedis());
afterEach(async () => {
  await bed?.close();
  bed = undefined;
  redis?.disconnect();
  redis = undefined;
});

async function scrape(fleet: Fleet) {
  const res = await fetch(`http://127.0.0.1:${fleet.metricsPort}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  return parseMetrics(await res.text());
}

async function finished(b: TestBed, requestId: string) {
  const res = await b.client.wait(requestId, { timeoutMs: 30_000 });
  assert.equal(res.kind, 'finished', JSON.stringify(res));
  return res.kind === 'finished' ? res.response : (undefined as never);
}

describe('the metrics endpoint', () => {
  describe('after requests that succeed, regenerate, retry, wait for approval and are rejected', () => {
    it('exposes every pyexec family, with values that match what happened', async () => {
      bed = await testBed({
        approval: {
          global_mode: 'selective',
          capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } },
        },
      });
      const prefix = bed.config.pyexec.redis.prefix;
      redis = new Redis(bed.redisUrl);
      const fleet = await bed.startFleet({
        metricsPort: 0,
        metrics: new Metrics(),
        generator: new ScriptedGenerator(),
        analyzer: new PatternAnalyzer(),
        decidePolicy: simplePolicy,
        executors: { local: new RecordingExecutor(redis, prefix) },
      });
      const submit = async (task: string) =>
        (await bed!.client.submit(sampleRequest({ task_objective: task }))).requestId;

      const ok = await submit('ok');
      const codeError = await submit('code-error');
      const flaky = await submit('flaky-llm');
      for (const id of [ok, codeError, flaky]) assert.equal((await finished(bed, id)).status, 'succeeded');

      // Two requests that write wait in the approval hold; the scrape shows them as held.
      const approved = await submit('write approved');
      const rejected = await submit('write rejected');
      await eventually(
        async () => ((await fleet.approvals.listHeld()).length === 2 ? true : undefined),
        20_000,
        'two held jobs',
      );
      const holding = await scrape(fleet);
      assert.equal(holding.value('pyexec_queue_jobs', { queue: 'approval-hold', state: 'held' }), 2);
      assert.equal(holding.value('bullmq_job_count', { queue: 'approval-hold', state: 'delayed' }), 2);

      const held = await fleet.approvals.listHeld();
      const holdOf = (id: string) => held.find((h) => h.requestId === id)!.holdJobId;
      await fleet.approvals.decide(holdOf(approved), { decision: 'approved', approver: 'op', source: 'test' });
      await fleet.approvals.decide(holdOf(rejected), {
        decision: 'rejected',
        approver: 'op',
        reason: 'not now',
        source: 'test',
      });
      assert.equal((await finished(bed, approved)).status, 'succeeded');
      assert.equal((await finished(bed, rejected)).status, 'rejected');

      const m = await scrape(fleet);
      // Queue jobs by state, per queue, and BullMQ's own family from the same process.
      for (const queue of ['generation', 'analysis', 'approval-hold', 'execution', 'result']) {
        for (const state of ['waiting', 'active', 'failed'])
          assert.ok(m.has('pyexec_queue_jobs', { queue, state }), `${queue} ${state}`);
        assert.ok(m.has('pyexec_queue_oldest_waiting_seconds', { queue }));
        assert.ok(m.has('bullmq_job_count', { queue, state: 'completed' }));
      }
      assert.ok(m.has('pyexec_queue_jobs', { queue: 'execution', state: 'delayed' }));
      assert.equal(m.value('pyexec_queue_jobs', { queue: 'approval-hold', state: 'held' }), 0);
      assert.equal(m.value('pyexec_approval_overdue_jobs'), 0);
      assert.equal(m.value('bullmq_job_count', { queue: 'result', state: 'completed' }), 5);

      // Stage durations by outcome: four executions ran ok, one was sent back to generation.
      assert.equal(m.value('pyexec_stage_duration_seconds_count', { stage: 'execution', outcome: 'ok' }), 4);
      assert.equal(m.value('pyexec_stage_duration_seconds_count', { stage: 'execution', outcome: 'regenerated' }), 1);
      assert.equal(m.value('pyexec_stage_duration_seconds_count', { stage: 'result' }), 5);
      // Retries: one per retry, by stage and error class.
      assert.equal(m.value('pyexec_retries_total', { stage: 'execution', error_class: 'code' }), 1);
      assert.equal(m.value('pyexec_retries_total', { stage: 'generation', error_class: 'infrastructure' }), 1);
      assert.equal(m.value('pyexec_retries_total'), 2);
      // Terminal outcomes.
      assert.equal(m.value('pyexec_requests_terminal_total', { status: 'succeeded' }), 4);
      assert.equal(m.value('pyexec_requests_terminal_total', { status: 'rejected' }), 1);
      assert.equal(m.value('pyexec_requests_terminal_total'), 5);
      // Approvals: decisions and time to decision.
      assert.equal(m.value('pyexec_approval_decisions_total', { decision: 'approved' }), 1);
      assert.equal(m.value('pyexec_approval_decisions_total', { decision: 'rejected' }), 1);
      assert.equal(m.value('pyexec_approval_decision_seconds_count'), 2);
      assert.ok(m.value('pyexec_approval_decision_seconds_sum') > 0);
      // Generator: six generations returned code (code-error twice), one call failed.
      const generations = 6;
      assert.equal(
        m.value('pyexec_generator_tokens_total', { generator: 'scripted', direction: 'input' }),
        generations * TOKENS.input,
      );
      assert.equal(
        m.value('pyexec_generator_tokens_total', { generator: 'scripted', direction: 'output' }),
        generations * TOKENS.output,
      );
      assert.equal(
        m.value('pyexec_generator_duration_seconds_count', { generator: 'scripted', outcome: 'ok' }),
        generations,
      );
      assert.equal(
        m.value('pyexec_generator_duration_seconds_count', { generator: 'scripted', outcome: 'infrastructure' }),
        1,
      );
      // Analysis findings by rule: the two writes.
      assert.equal(m.value('pyexec_analysis_findings_total', { rule: 'epics-write', severity: 'high' }), 2);
      // Process: named state, readiness, job slots.
      assert.equal(m.value('pyexec_process_state', { state: 'running' }), 1);
      assert.equal(m.value('pyexec_process_state', { state: 'draining' }), 0);
      assert.equal(m.value('pyexec_ready'), 1);
      assert.equal(
        m.value('pyexec_worker_slots', { stage: 'execution', state: 'total' }),
        bed.config.pyexec.concurrency.execution,
      );
      assert.equal(m.value('pyexec_worker_slots', { stage: 'execution', state: 'busy' }), 0);
      // Kernel pool families are declared (the container method fills them; this fleet runs `local`).
      for (const family of ['pyexec_kernels', 'pyexec_kernel_lease_wait_seconds', 'pyexec_kernel_replacements_total']) {
        assert.ok(m.families.has(family), `${family} declared`);
      }
      for (const family of [
        'pyexec_stalled_jobs_total',
        'pyexec_shutdown_interrupted_jobs_total',
        'pyexec_queue_wait_seconds',
      ]) {
        assert.ok(m.families.has(family), `${family} declared`);
      }
      // No per-job labels anywhere.
      for (const s of m.samples) {
        for (const [k, v] of Object.entries(s.labels)) {
          assert.ok(!/job_?id|request_?id/i.test(k), `${s.name} has label ${k}`);
          assert.ok(
            ![ok, codeError, flaky, approved, rejected].some((id) => v.includes(id)),
            `${s.name} carries a request id`,
          );
        }
      }
      // One exposition, each family declared once (Prometheus rejects a repeated TYPE).
      const text = await (await fetch(`http://127.0.0.1:${fleet.metricsPort}/metrics`)).text();
      const types = [...text.matchAll(/^# TYPE (\S+)/gm)].map((x) => x[1]);
      assert.equal(new Set(types).size, types.length);
    });
  });

  describe('with thousands of queued jobs', () => {
    it('answers a scrape without listing them: the Redis commands per scrape do not grow with the queue', async () => {
      bed = await testBed();
      // No stages: no worker polls Redis in the background, so only the scrape's commands count.
      const fleet = await bed.startFleet({ stages: [], metricsPort: 0, queueMetrics: true, bullmqMetrics: true });
      const info = new Redis(bed.redisUrl);
      redis = info;
      const once = async () => {
        const before = Number(/total_commands_processed:(\d+)/.exec(await info.info('stats'))![1]);
        await scrape(fleet);
        const after = Number(/total_commands_processed:(\d+)/.exec(await info.info('stats'))![1]);
        return after - before - 1; // the INFO itself
      };
      // The fewest of three: a periodic command of the process (the reaper's sweep, a presence
      // beat) may land inside one measurement, never inside all three.
      const commandsPerScrape = async () => Math.min(await once(), await once(), await once());
      const queue = fleet.queues.generation;
      await queue.add('bulk', { n: -1 });
      const few = await commandsPerScrape();
      for (let i = 0; i < 5; i++) {
        await queue.addBulk(Array.from({ length: 1000 }, (_, j) => ({ name: 'bulk', data: { n: i * 1000 + j } })));
      }
      const many = await commandsPerScrape();
      const m = await scrape(fleet);
      assert.equal(m.value('pyexec_queue_jobs', { queue: 'generation', state: 'waiting' }), 5001);
      assert.ok(m.value('pyexec_queue_oldest_waiting_seconds', { queue: 'generation' }) >= 0);
      assert.equal(many, few, `a scrape took ${few} Redis commands with one queued job and ${many} with 5,001`);
    });
  });
});
