/**
 * The generation stage (createGenerationProcessor) with in-memory fakes: where it places a
 * request, what it hands to analysis, how empty code spends the generation budget, how it refuses
 * a method override, and how generator errors route by kind (infrastructure: BullMQ retry, then
 * `failed`; configuration: `failed` at once).
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { UnrecoverableError } from 'bullmq';
import { CodeGenerationError, GeneratorConfigError, GeneratorUnavailableError } from '../../../src/errors.js';
import { AnalysisJob } from '../../../src/queues/analysis.js';
import { GenerationJob } from '../../../src/queues/generation.js';
import { ResultJob } from '../../../src/queues/result.js';
import { executionFolderFor } from '../../../src/store/execution-folder.js';
import { createGenerationProcessor } from '../../../src/workers/generation-worker.js';
import { sha256 } from '../../../src/workers/stage-runtime.js';
import {
  counted,
  fakeJob,
  type GeneratorReply,
  generationJobData,
  REQUEST_ID,
  ScriptedCodeGenerator,
  type StageWorld,
  SUBMITTED_AT,
  stageWorld,
  takeJob,
} from '../../support/stage-fakes.js';

const CODE = "from epics import caget\nresults = {'current': caget('SR:CURRENT')}";

let world: StageWorld;
const worlds: StageWorld[] = [];
afterEach(() => {
  for (const w of worlds.splice(0)) w.close();
});

function setup(replies: GeneratorReply[], doc: Record<string, unknown> = {}) {
  world = stageWorld(doc);
  worlds.push(world);
  const generator = new ScriptedCodeGenerator(replies);
  const processor = createGenerationProcessor({ ...world.deps, generator });
  return { generator, processor, queues: world.queues, store: world.store };
}

describe('generation stage', () => {
  it('hands code and its sha256 to analysis, placing a request the producer left unplaced', async () => {
    const { processor, queues, store, generator } = setup([CODE]);
    const out = await processor(fakeJob(generationJobData(), { id: `${REQUEST_ID}-generation-1` }));
    assert.equal(out, 'ok');
    const next = queues.only();
    assert.equal(next.stage, 'analysis');
    assert.equal(next.id, `${REQUEST_ID}-analysis-1`);
    const env = AnalysisJob.parse(next.data);
    assert.equal(env.code, CODE);
    assert.equal(env.codeSha256, sha256(CODE));
    assert.equal(env.generator, 'scripted');
    assert.equal(env.attempt, 1);
    // Placed from the config: its method, a folder named from the submission time.
    assert.equal(env.executionMethod, 'container');
    const folder = executionFolderFor(world.root, 'unit', REQUEST_ID, new Date(SUBMITTED_AT));
    assert.equal(env.executionFolder, folder);
    assert.deepEqual(
      env.timings.map((t) => [t.stage, t.attempt, t.outcome]),
      [['generation', 1, 'ok']],
    );
    // The generator was asked with the placed folder and no error chain.
    assert.equal(generator.calls.length, 1);
    assert.equal(generator.calls[0]!.executionFolder, folder);
    assert.deepEqual(generator.calls[0]!.errorChain, []);
    // The producer sees `generating`; the attempt's code is kept in the folder.
    assert.deepEqual(store.statuses, [
      { requestId: REQUEST_ID, status: 'generating', data: { stage: 'generation', attempt: 1 } },
    ]);
    const saved = JSON.parse(await readFile(path.join(folder, 'attempts', '01_generated.json'), 'utf8'));
    assert.equal(saved.code, CODE);
    assert.equal(await counted(world.metrics.generatorTokens, { direction: 'input' }), 10);
    assert.deepEqual(world.faults, ['handoff:analysis']);
  });

  it('keeps the method and folder of a job the client placed', async () => {
    const { processor, queues } = setup([CODE], { execution: { execution_method: 'local' } });
    const data = generationJobData({ placed: { method: 'container', root: '/elsewhere' } });
    await processor(fakeJob(data));
    const env = AnalysisJob.parse(queues.only().data);
    assert.equal(env.executionMethod, 'container');
    assert.equal(env.executionFolder, data.executionFolder);
  });

  it('sends empty code back to generation as attempt 2, with the error in the chain', async () => {
    const { processor, queues, generator } = setup(['   \n', CODE]);
    assert.equal(await processor(fakeJob(generationJobData())), 'regenerated');
    const retry = queues.only();
    assert.equal(retry.stage, 'generation');
    assert.equal(retry.id, `${REQUEST_ID}-generation-2`);
    const env = GenerationJob.parse(retry.data);
    assert.equal(env.attempt, 2);
    assert.equal(env.generationFailures, 1);
    assert.equal(env.executionFailures, 0);
    assert.deepEqual(
      env.errorChain.map((e) => [e.stage, e.errorType, e.kind, e.attempt, e.message]),
      [['generation', 'generation', 'code', 1, 'the generator returned empty code']],
    );
    assert.equal(await counted(world.metrics.retries, { stage: 'generation', error_class: 'code' }), 1);
    // Attempt 2 is asked with the chain (error-aware regeneration) and goes on to analysis.
    assert.equal(await processor(takeJob(retry)), 'ok');
    assert.equal(generator.calls[1]!.attempt, 2);
    assert.equal(generator.calls[1]!.errorChain.length, 1);
    assert.equal(queues.last().id, `${REQUEST_ID}-analysis-2`);
  });

  it('fails the request with generation_retries_exhausted after max_generation_retries regenerations', async () => {
    const { processor, queues, generator } = setup([new CodeGenerationError('no code block in the reply')], {
      python_executor: { max_generation_retries: 2 },
    });
    let job = fakeJob(generationJobData());
    const labels: string[] = [];
    for (let i = 0; i < 3; i++) {
      labels.push(await processor(job));
      job = takeJob(queues.last());
    }
    assert.deepEqual(labels, ['regenerated', 'regenerated', 'failed']);
    assert.equal(generator.calls.length, 3);
    assert.deepEqual(
      queues.added.map((j) => j.id),
      [`${REQUEST_ID}-generation-2`, `${REQUEST_ID}-generation-3`, `${REQUEST_ID}-result-3`],
    );
    const end = ResultJob.parse(queues.last().data);
    assert.equal(end.outcome.status, 'failed');
    assert.equal(end.outcome.detail, 'generation_retries_exhausted');
    assert.match(end.outcome.reason!, /max_generation_retries: 2.*no code block in the reply/);
    assert.equal(end.generationFailures, 3);
    assert.equal(end.errorChain.length, 3);
  });

  it('with max_generation_retries 0, the first empty code ends the request', async () => {
    const { processor, queues } = setup([''], { python_executor: { max_generation_retries: 0 } });
    assert.equal(await processor(fakeJob(generationJobData())), 'failed');
    assert.equal(queues.only().id, `${REQUEST_ID}-result-1`);
  });

  it('refuses a method override the config does not allow, without asking the generator', async () => {
    const { processor, queues, generator } = setup([CODE]);
    const out = await processor(fakeJob(generationJobData({ request: { execution_method: 'local' } })));
    assert.equal(out, 'refused');
    assert.equal(generator.calls.length, 0);
    const end = ResultJob.parse(queues.only().data);
    assert.equal(queues.only().id, `${REQUEST_ID}-result-1`);
    assert.equal(end.outcome.status, 'failed');
    assert.equal(end.outcome.detail, 'invalid_request');
    assert.match(end.outcome.reason!, /execution_method 'local'.*allow_method_override/);
    assert.deepEqual(
      end.timings.map((t) => [t.stage, t.outcome]),
      [['generation', 'refused']],
    );
  });

  it('honours a method override where the config allows it, and the same method always', async () => {
    const { processor, queues } = setup([CODE], { execution: { allow_method_override: true } });
    await processor(fakeJob(generationJobData({ request: { execution_method: 'local' } })));
    assert.equal(AnalysisJob.parse(queues.only().data).executionMethod, 'local');

    const same = setup([CODE]);
    await same.processor(fakeJob(generationJobData({ request: { execution_method: 'container' } })));
    assert.equal(same.queues.only().stage, 'analysis');
  });

  it('re-throws an unavailable generator while BullMQ attempts remain, adding nothing', async () => {
    const { processor, queues } = setup([new GeneratorUnavailableError('429 rate limited')]);
    await assert.rejects(processor(fakeJob(generationJobData(), { attemptsMade: 1, attempts: 3 })), {
      name: 'GeneratorUnavailableError',
    });
    assert.equal(queues.added.length, 0);
    assert.equal(await counted(world.metrics.retries, { stage: 'generation', error_class: 'infrastructure' }), 1);
  });

  it('ends the request failed when the generator is still unavailable on the last attempt', async () => {
    const { processor, queues } = setup([new GeneratorUnavailableError('503 overloaded')]);
    const out = await processor(fakeJob(generationJobData(), { attemptsMade: 2, attempts: 3 }));
    assert.equal(out, 'failed');
    const end = ResultJob.parse(queues.only().data);
    assert.equal(end.outcome.status, 'failed');
    assert.equal(end.outcome.detail, 'infrastructure');
    assert.match(end.outcome.reason!, /generation: infrastructure unavailable after 3 attempts: 503 overloaded/);
    assert.deepEqual(
      end.errorChain.map((e) => [e.stage, e.errorType, e.kind]),
      [['generation', 'generator_unavailable', 'infrastructure']],
    );
    // It was placed before it ended: the result stage knows where its folder is.
    assert.ok(end.executionFolder.startsWith(world.root));
  });

  it('ends the request at once on a configuration error (bad credentials), whatever attempts remain', async () => {
    const { processor, queues } = setup([new GeneratorConfigError('401 invalid api key')]);
    const out = await processor(fakeJob(generationJobData(), { attemptsMade: 0, attempts: 5 }));
    assert.equal(out, 'failed');
    const end = ResultJob.parse(queues.only().data);
    assert.equal(end.outcome.detail, 'configuration');
    assert.equal(end.outcome.reason, 'generation: 401 invalid api key');
    assert.equal(end.errorChain[0]!.errorType, 'generator_config');
  });

  it('fails a job whose data cannot parse for good (UnrecoverableError), touching nothing', async () => {
    const { processor, queues, store, generator } = setup([CODE]);
    const bad = { ...generationJobData(), requestId: 'not-a-uuid' };
    await assert.rejects(processor(fakeJob(bad)), UnrecoverableError);
    assert.equal(generator.calls.length, 0);
    assert.equal(queues.added.length, 0);
    assert.equal(store.statuses.length, 0);
  });
});
