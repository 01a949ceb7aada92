import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { CodeGenerationError } from '../../../src/errors.js';
import {
  type CodeGenerator,
  HybridGenerator,
  instrumentGenerator,
  MockGenerator,
} from '../../../src/generators/index.js';
import { makeRequest, never, runtimeError } from '../../support/generator-support.js';

function metrics() {
  const registry = new Registry();
  const tokens = new Counter({
    name: 'pyexec_generator_tokens_total',
    help: 'tokens',
    labelNames: ['generator', 'direction'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'pyexec_generator_duration_seconds',
    help: 'duration',
    labelNames: ['generator', 'outcome'] as const,
    registers: [registry],
  });
  return { registry, tokens, duration };
}

const usingTokens: CodeGenerator = {
  name: 'basic',
  generate: async () => ({
    code: 'results = {}',
    generator: 'basic',
    usage: { inputTokens: 120, outputTokens: 30 },
    durationMs: 1500,
  }),
};

describe('instrumentGenerator', () => {
  it('counts tokens and observes the generation time per generator', async () => {
    const m = metrics();
    await instrumentGenerator(usingTokens, m).generate(makeRequest(), never);
    const text = await m.registry.metrics();
    assert.match(text, /pyexec_generator_tokens_total\{generator="basic",direction="input"\} 120/);
    assert.match(text, /pyexec_generator_tokens_total\{generator="basic",direction="output"\} 30/);
    assert.match(text, /pyexec_generator_duration_seconds_sum\{generator="basic",outcome="success"\} 1\.5/);
  });

  it('labels a hybrid generation with the inner generator that wrote the code', async () => {
    const m = metrics();
    const hybrid = new HybridGenerator(new MockGenerator({ behavior: 'success' }), usingTokens);
    await instrumentGenerator(hybrid, m).generate(makeRequest({ errorChain: [runtimeError(1)] }), never);
    assert.match(
      await m.registry.metrics(),
      /pyexec_generator_tokens_total\{generator="basic",direction="input"\} 120/,
    );
  });

  it('observes a failure under the error kind and rethrows it', async () => {
    const m = metrics();
    const failing: CodeGenerator = {
      name: 'basic',
      generate: async () => {
        throw new CodeGenerationError('no code');
      },
    };
    await assert.rejects(instrumentGenerator(failing, m).generate(makeRequest(), never), CodeGenerationError);
    assert.match(
      await m.registry.metrics(),
      /pyexec_generator_duration_seconds_count\{generator="basic",outcome="code"\} 1/,
    );
  });
});
