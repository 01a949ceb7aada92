/**
 * LLM calls as child spans, through the real `openai` and `@anthropic-ai/sdk` clients against the
 * fake LLM server: named and attributed after the GenAI conventions, children of the active span,
 * and never carrying the prompt, the reply or an SDK error's message (which may echo a key).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { createCodeGenerator } from '../../../src/generators/index.js';
import { startTelemetry, type Telemetry } from '../../../src/telemetry/setup.js';
import { inStageSpan } from '../../../src/telemetry/tracing.js';
import { type FakeLlmServer, startFakeLlmServer } from '../../support/fake-llm-server.js';
import { makeConfig, makeRequest, never, SECRET_KEY } from '../../support/generator-support.js';

let llm: FakeLlmServer;
let telemetry: Telemetry;
const memory = new InMemorySpanExporter();
before(async () => {
  llm = await startFakeLlmServer();
  telemetry = await startTelemetry({ sample_ratio: 1 }, { exporter: memory });
});
after(async () => {
  await llm.close();
  await telemetry.shutdown();
});
afterEach(() => {
  llm.reset();
  memory.reset();
});

const generator = (name: 'basic' | 'claude_code') =>
  createCodeGenerator(
    makeConfig({
      execution: {
        code_generator: name,
        generators:
          name === 'basic'
            ? { basic: { base_url: llm.openaiBaseUrl, model_id: 'm-openai', save_prompts: false, max_retries: 0 } }
            : {
                claude_code: {
                  base_url: llm.anthropicBaseUrl,
                  model_id: 'm-claude',
                  save_prompts: false,
                  max_retries: 0,
                },
              },
      },
    }),
    { env: { OPENAI_API_KEY: SECRET_KEY, ANTHROPIC_API_KEY: SECRET_KEY } },
  );

/** Runs a generation inside a stage span, as the generation stage does. */
const generate = async (name: 'basic' | 'claude_code') => {
  const g = await generator(name);
  return inStageSpan('generation', 'job', { requestId: 'r' }, () => g.generate(makeRequest(), never));
};

describe('LLM spans', () => {
  it('openai: one client span `chat <model>`, a child of the stage span, with usage and no prompt or reply', async () => {
    llm.script({ text: 'results = {"mean_current_ma": 2.0}', usage: { inputTokens: 120, outputTokens: 12 } });
    await generate('basic');
    const spans = memory.getFinishedSpans();
    const stage = spans.find((s) => s.name === 'pyexec.generation')!;
    const chat = spans.find((s) => s.name === 'chat m-openai');
    assert.ok(chat, spans.map((s) => s.name).join(', '));
    assert.equal(chat.parentSpanId, stage.spanContext().spanId);
    assert.equal(chat.attributes['gen_ai.provider.name'], 'openai');
    assert.equal(chat.attributes['gen_ai.usage.input_tokens'], 120);
    assert.equal(chat.attributes['gen_ai.usage.output_tokens'], 12);
    assert.equal(chat.attributes['server.address'], '127.0.0.1');
    const all = JSON.stringify(spans.map((s) => [s.attributes, s.events]));
    assert.doesNotMatch(all, /beam current|mean_current_ma|do-not-leak/, 'no prompt, no reply, no context');
  });

  it('anthropic: a span per call, children of the stage span', async () => {
    llm.setDefaultReply({ text: '```python\nresults = {"mean_current_ma": 2.0}\n```', api: 'anthropic' });
    await generate('claude_code');
    const spans = memory.getFinishedSpans();
    const stage = spans.find((s) => s.name === 'pyexec.generation')!;
    const calls = spans.filter((s) => s.name === 'chat m-claude');
    assert.ok(calls.length >= 1, spans.map((s) => s.name).join(', '));
    assert.equal(calls.length, llm.requests.length, 'one span per call');
    for (const c of calls) {
      assert.equal(c.parentSpanId, stage.spanContext().spanId);
      assert.equal(c.attributes['gen_ai.provider.name'], 'anthropic');
      assert.equal(typeof c.attributes['pyexec.generator.phase'], 'string');
    }
  });

  it('a failed call is an ERROR span with the error class, and not its message (it may echo the key)', async () => {
    llm.script({ status: 401, errorMessage: `Incorrect API key provided: ${SECRET_KEY}` });
    await assert.rejects(generate('basic'));
    const chat = memory.getFinishedSpans().find((s) => s.name === 'chat m-openai');
    assert.ok(chat);
    assert.equal(chat.status.code, 2);
    assert.equal(typeof chat.attributes['error.type'], 'string');
    assert.equal(chat.events.length, 0, 'no exception event');
    const everything = memory.getFinishedSpans().map((s) => [s.name, s.attributes, s.status, s.events]);
    assert.equal(everything.length, 2, 'the call and the stage');
    assert.doesNotMatch(JSON.stringify(everything), /SECRET/, 'the stage span records the scrubbed error only');
  });
});
