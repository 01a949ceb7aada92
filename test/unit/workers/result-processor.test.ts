/**
 * The result stage (createResultProcessor) with an in-memory store: it records the end once
 * (RequestStore.end's `recorded` / `already_ended` / `missing`), builds the producer's response from
 * the envelope, writes the notebook and response.json in the request's folder, and a second result
 * job for an ended request changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { Outcome } from '../../../src/queues/envelope.js';
import { PythonExecutionResponse, type ResultJobInput } from '../../../src/queues/result.js';
import { createResultProcessor } from '../../../src/workers/result-worker.js';
import { withError } from '../../../src/workers/stage-runtime.js';
import {
  analysisRecord,
  counted,
  executionJobData,
  FakeStore,
  fakeJob,
  REQUEST_ID,
  type StageWorld,
  stageWorld,
} from '../../support/stage-fakes.js';

const CODE = "from epics import caget\nresults = {'current': caget('SR:CURRENT')}";
const ANALYSIS = analysisRecord();

const worlds: StageWorld[] = [];
afterEach(() => {
  for (const w of worlds.splice(0)) w.close();
});

function setup(doc: Record<string, unknown> = {}) {
  const world = stageWorld(doc);
  worlds.push(world);
  return { world, processor: createResultProcessor(world.deps), store: world.store, queues: world.queues };
}

/** An execution job whose folder exists (the earlier stages wrote their files in it). */
function executed(world: StageWorld) {
  const env = executionJobData(world, CODE, ANALYSIS);
  mkdirSync(env.executionFolder, { recursive: true });
  return env;
}

function succeeded(world: StageWorld): ResultJobInput {
  const env = executed(world);
  return {
    ...env,
    execution: {
      method: 'container',
      mode: 'read_only',
      results: { current: 401.2 },
      stdout: 'read it\n',
      stderr: '',
      figures: [],
      durationMs: 1500,
      executionFolder: env.executionFolder,
    },
    outcome: { status: 'succeeded' },
  };
}

function ended(world: StageWorld, outcome: Outcome): ResultJobInput {
  const env = executed(world);
  const failed = withError(env, {
    stage: 'execution',
    errorType: 'runtime',
    kind: 'code',
    message: "NameError: name 'x' is not defined",
    traceback: 'Traceback ...',
    failedCode: CODE,
  });
  return { ...failed, outcome };
}

describe('result stage', () => {
  it('records a success once: the response, the notebook and response.json', async () => {
    const { world, processor, store, queues } = setup();
    const data = succeeded(world);
    assert.equal(await processor(fakeJob(data, { id: `${REQUEST_ID}-result-1` })), 'succeeded');
    assert.deepEqual(store.endCalls, [{ requestId: REQUEST_ID, status: 'succeeded', result: 'recorded' }]);
    const record = store.ended.get(REQUEST_ID)!;
    assert.equal(record.ttlSeconds, 604_800, 'retention.finished_seconds');
    const response = PythonExecutionResponse.parse(record.response);
    assert.equal(response.request_id, REQUEST_ID);
    assert.equal(response.status, 'succeeded');
    assert.deepEqual(response.results, { current: 401.2 });
    assert.equal(response.execution_stdout, 'read it\n');
    assert.equal(response.execution_time_seconds, 1.5);
    assert.equal(response.execution_mode, 'read_only');
    assert.equal(response.generated_code, CODE);
    assert.deepEqual(response.execution_result?.results, { current: 401.2 });
    assert.equal(response.notebook_link, null, 'no notebook_base_url configured');
    assert.deepEqual(
      response.timings.map((t) => [t.stage, t.outcome]),
      [['result', 'succeeded']],
    );
    assert.equal(response.notebook_path, path.join(data.executionFolder, 'notebook.ipynb'));
    const notebook = JSON.parse(await readFile(response.notebook_path!, 'utf8'));
    assert.equal(notebook.nbformat, 4);
    const onDisk = JSON.parse(await readFile(path.join(data.executionFolder, 'response.json'), 'utf8'));
    assert.equal(onDisk.status, 'succeeded');
    assert.equal(await counted(world.metrics.terminal, { status: 'succeeded' }), 1);
    assert.equal(queues.added.length, 0, 'the result stage hands nothing on');
    assert.deepEqual(
      store.statuses.map((s) => s.status),
      ['finishing'],
    );
    assert.deepEqual(world.faults, ['result:ended']);
  });

  it('records a failure with its error chain, and no results', async () => {
    const { world, processor, store } = setup();
    const outcome = { status: 'failed', reason: 'execution retries exhausted', detail: 'execution_retries_exhausted' };
    assert.equal(await processor(fakeJob(ended(world, outcome as Outcome))), 'failed');
    const response = PythonExecutionResponse.parse(store.ended.get(REQUEST_ID)!.response);
    assert.equal(response.status, 'failed');
    assert.equal(response.reason, 'execution retries exhausted');
    assert.equal(response.detail, 'execution_retries_exhausted');
    assert.equal(response.results, null);
    assert.equal(response.execution_result, null);
    assert.deepEqual(
      response.error_chain.map((e) => [e.stage, e.error_type, e.kind, e.traceback, e.failed_code]),
      [['execution', 'runtime', 'code', 'Traceback ...', CODE]],
    );
    assert.equal(await counted(world.metrics.terminal, { status: 'failed' }), 1);
  });

  it('a second result job for an ended request changes nothing', async () => {
    const { world, processor, store } = setup();
    await processor(fakeJob(succeeded(world), { id: `${REQUEST_ID}-result-1` }));
    const first = store.ended.get(REQUEST_ID);
    const later = ended(world, { status: 'failed', reason: 'late' });
    assert.equal(await processor(fakeJob(later, { id: `${REQUEST_ID}-result-2` })), 'already_ended');
    assert.equal(store.endCalls.length, 1, 'end is not called again');
    assert.equal(store.ended.get(REQUEST_ID), first);
    assert.equal(await counted(world.metrics.terminal), 1);
  });

  it('an end that lost a race (already_ended from the store) counts nothing and keeps the first response', async () => {
    // Two result workers both passed the hasEnded check; the store's atomic END picks one.
    const { world } = setup();
    const racing = new (class extends FakeStore {
      override async hasEnded(): Promise<boolean> {
        return false;
      }
    })().submit(REQUEST_ID);
    const processor = createResultProcessor({ ...world.deps, store: racing });
    assert.equal(await processor(fakeJob(succeeded(world))), 'succeeded');
    assert.equal(await processor(fakeJob(ended(world, { status: 'failed', reason: 'other road' }))), 'failed');
    assert.deepEqual(
      racing.endCalls.map((c) => [c.status, c.result]),
      [
        ['succeeded', 'recorded'],
        ['failed', 'already_ended'],
      ],
    );
    assert.equal(racing.ended.get(REQUEST_ID)?.status, 'succeeded');
    assert.equal(await counted(world.metrics.terminal), 1);
  });

  it('a request whose record is gone (past retention) is not counted as ended', async () => {
    const { world } = setup();
    const empty = new FakeStore();
    const processor = createResultProcessor({ ...world.deps, store: empty });
    await processor(fakeJob(succeeded(world)));
    assert.deepEqual(
      empty.endCalls.map((c) => c.result),
      ['missing'],
    );
    assert.equal(await counted(world.metrics.terminal), 0);
  });

  it('a cancel requested late does not turn a decided outcome into cancelled', async () => {
    const { world, processor, store } = setup();
    store.requestCancel(REQUEST_ID);
    assert.equal(await processor(fakeJob(succeeded(world))), 'succeeded');
    assert.equal(store.ended.get(REQUEST_ID)?.status, 'succeeded');
  });

  it('links the notebook in JupyterLab when notebook_base_url is set', async () => {
    const { world, processor, store } = setup({
      execution: { container: { notebook_base_url: 'http://jupyter.example:8888/lab/tree/executions/' } },
    });
    const data = succeeded(world);
    await processor(fakeJob(data));
    const response = PythonExecutionResponse.parse(store.ended.get(REQUEST_ID)!.response);
    const rel = path.relative(world.root, path.join(data.executionFolder, 'notebook.ipynb'));
    assert.equal(response.notebook_link, `http://jupyter.example:8888/lab/tree/executions/${rel}`);
  });

  it('a request that ended before any code was generated gets a response but no notebook', async () => {
    const { world, processor, store } = setup();
    const { code: _c, codeSha256: _s, analysis: _a, ...noCode } = executionJobData(world, CODE, ANALYSIS);
    await processor(
      fakeJob({ ...noCode, outcome: { status: 'failed', reason: 'refused', detail: 'invalid_request' } }),
    );
    const response = PythonExecutionResponse.parse(store.ended.get(REQUEST_ID)!.response);
    assert.equal(response.generated_code, null);
    assert.equal(response.notebook_path, null);
    await assert.rejects(stat(path.join(noCode.executionFolder, 'notebook.ipynb')), { code: 'ENOENT' });
  });
});
