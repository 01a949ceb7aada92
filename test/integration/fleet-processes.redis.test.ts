/**
 * Worker processes as SREs run them (`pyexec worker <stage>`, separate OS processes) against one
 * real Redis: a worker killed between adding the next stage's job and finishing its own leaves
 * exactly one next-stage job, and the request still ends once. Also: a custom generator loaded by
 * module path from config drives the whole pipeline.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { projectRoot } from '../../src/python-env.js';
import { eventually, sampleRequest, spawnWorker, stopRedis, type TestBed, testBed } from '../support/harness.js';

let bed: TestBed | undefined;
const children: ChildProcess[] = [];
after(() => stopRedis());
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await bed?.close();
  bed = undefined;
});

/** `pyexec worker <stages>` (with `fault`: the test entry that exits at that FaultPoint), killed after each test. */
function startWorker(b: TestBed, stages: string[], fault?: string): ChildProcess {
  const child = spawnWorker(b, stages, fault ? { fault } : {});
  children.push(child);
  return child;
}

const exited = (c: ChildProcess) =>
  new Promise<number | null>((resolve) =>
    c.exitCode !== null ? resolve(c.exitCode) : c.once('exit', (code) => resolve(code)),
  );

describe('worker processes', () => {
  describe('when an analysis worker dies right after handing off to execution', () => {
    it('leaves exactly one execution job, and the request succeeds once', async () => {
      bed = await testBed({ pyexec: { lock_duration_ms: 1500, stalled_interval_ms: 1000 } });
      // This process runs every stage but analysis; analysis runs in child processes.
      await bed.startFleet({ stages: ['generation', 'execution', 'result'] });
      const crashing = startWorker(bed, ['analysis'], 'handoff:execution');
      const { requestId } = await bed.client.submit(sampleRequest());
      assert.equal(await exited(crashing), 137, 'the fault hook ends the worker after the hand-off');
      // A healthy analysis worker finds the stalled job and runs it again.
      startWorker(bed, ['analysis']);
      const res = await bed.client.wait(requestId, { timeoutMs: 60_000 });
      assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
      const fleet = bed.fleets[0]!;
      const exec = await fleet.queues.execution.getJobs(['completed', 'waiting', 'active', 'delayed', 'failed']);
      const mine = exec.filter((j) => j.data.requestId === requestId);
      assert.deepEqual(
        mine.map((j) => j.id),
        [`${requestId}-execution-1`],
      );
      // The stalled analysis job is re-run by the healthy worker; its hand-off adds nothing new.
      const analysed = await eventually(
        async () => (await fleet.queues.analysis.getJobs(['completed'])).find((j) => j.data.requestId === requestId),
        30_000,
        'the re-run of the stalled analysis job',
      );
      assert.ok((analysed.attemptsStarted ?? 0) >= 2, 'the analysis job was started twice (crash, then rerun)');
      const exec2 = await fleet.queues.execution.getJobs(['completed', 'waiting', 'active', 'delayed', 'failed']);
      assert.equal(
        exec2.filter((j) => j.data.requestId === requestId).length,
        1,
        'the re-run added no second execution job',
      );
      const results = await fleet.queues.result.getJobs(['completed', 'waiting', 'active', 'delayed', 'failed']);
      assert.equal(results.filter((j) => j.data.requestId === requestId).length, 1);
    });
  });

  describe('a custom generator registered by module path', () => {
    it('writes the code that the pipeline runs', async () => {
      bed = await testBed({
        execution: {
          code_generator: 'echo',
          generators: {
            echo: {
              module_path: path.join(projectRoot, 'test/fixtures/generators/echo-generator.mjs'),
              export: 'EchoGenerator',
              greeting: 'hello from config',
            },
          },
        },
      });
      await bed.startFleet();
      const { requestId } = await bed.client.submit(sampleRequest({ task_objective: 'echo this task' }));
      const res = await bed.client.wait(requestId, { timeoutMs: 60_000 });
      assert.equal(res.kind === 'finished' && res.response.status, 'succeeded');
      if (res.kind !== 'finished') return;
      assert.deepEqual(res.response.results, { task: 'echo this task', greeting: 'hello from config', attempt: 1 });
      assert.match(res.response.generated_code ?? '', /custom generator 'echo'/);
    });
  });
});
