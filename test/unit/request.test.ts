import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MOCK_BEHAVIOR_NAMES, MOCK_BEHAVIORS, MockGenerator } from '../../src/generators/mock-generator.js';
import { PythonExecutionRequest } from '../../src/request.js';

const base = { user_query: 'q', task_objective: 't', execution_folder_name: 'f' };

describe('the request model', () => {
  it("fills Osprey's defaults", () => {
    const r = PythonExecutionRequest.parse(base);
    assert.deepEqual(r.expected_results, {});
    assert.deepEqual(r.capability_prompts, []);
    assert.equal(r.capability_context_data, null);
  });
  it('refuses missing fields, unknown fields and unsafe folder names, naming each', () => {
    const res = PythonExecutionRequest.safeParse({ user_query: '', execution_folder_name: '../etc', colour: 'red' });
    assert.equal(res.success, false);
    const paths = res.error!.issues.map((i) => i.path.join('.') || i.message).join(' ');
    assert.match(paths, /user_query/);
    assert.match(paths, /task_objective/);
    assert.match(paths, /execution_folder_name/);
    assert.match(JSON.stringify(res.error!.issues), /colour/);
  });
});

const req = (attempt: number, errors: { errorType: string; message: string }[] = []) => ({
  requestId: 'r',
  request: PythonExecutionRequest.parse(base),
  attempt,
  executionFolder: '/tmp',
  errorChain: errors.map((e) => ({ ...e, stage: 'execution', issues: [], attempt: 1 })),
});
const signal = new AbortController().signal;

describe('mock generator', () => {
  it('has every Osprey behaviour, with EPICS ones written for pyepics', () => {
    assert.deepEqual(MOCK_BEHAVIOR_NAMES.sort(), [
      'epics_read',
      'epics_write',
      'error_aware',
      'missing_results',
      'runtime_error',
      'security_risk',
      'success',
      'syntax_error',
    ]);
    assert.match(MOCK_BEHAVIORS.epics_write, /from epics import caget, caput/);
    assert.doesNotMatch(MOCK_BEHAVIORS.epics_read, /caput/);
    assert.match(MOCK_BEHAVIORS.runtime_error, /100 \/ 0/);
    assert.doesNotMatch(MOCK_BEHAVIORS.missing_results, /results =/);
  });
  it('picks from a sequence by attempt, repeating the last', async () => {
    const g = new MockGenerator({ sequence: ['a', 'b'] });
    assert.equal((await g.generate(req(1), signal)).code, 'a');
    assert.equal((await g.generate(req(2), signal)).code, 'b');
    assert.equal((await g.generate(req(5), signal)).code, 'b');
  });
  it('error_aware follows the error chain', async () => {
    const g = new MockGenerator({ behavior: 'error_aware' });
    assert.match((await g.generate(req(1), signal)).code, /mean\(values\)/);
    assert.match(
      (await g.generate(req(2, [{ errorType: 'runtime', message: "NameError: name 'mean' is not defined" }]), signal))
        .code,
      /from statistics import mean/,
    );
    assert.match(
      (await g.generate(req(2, [{ errorType: 'runtime', message: 'ZeroDivisionError' }]), signal)).code,
      /if count else/,
    );
    assert.match(
      (await g.generate(req(2, [{ errorType: 'syntax', message: 'bad' }]), signal)).code,
      /def calculate_mean/,
    );
    assert.match(
      (await g.generate(req(2, [{ errorType: 'runtime', message: 'other' }]), signal)).code,
      /Fixed after error/,
    );
  });
  it('refuses an unknown behaviour or no configuration', () => {
    assert.throws(() => new MockGenerator({ behavior: 'dance' }), /Unknown behavior: dance/);
    assert.throws(() => new MockGenerator({}), /not configured/);
  });
});
