import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CodeGenerationError,
  ConfigError,
  GeneratorConfigError,
  GeneratorUnavailableError,
} from '../../../src/errors.js';
import { type CodeGenerator, createCodeGenerator } from '../../../src/generators/index.js';
import { type FakeLlmServer, startFakeLlmServer } from '../../support/fake-llm-server.js';
import {
  makeConfig,
  makeRequest,
  never,
  readTree,
  runtimeError,
  SECRET_KEY,
  tempFolder,
} from '../../support/generator-support.js';

// The claude_code generator through the real `@anthropic-ai/sdk` against the fake Messages API.

let llm: FakeLlmServer;
before(async () => {
  llm = await startFakeLlmServer();
});
after(() => llm.close());
afterEach(() => llm.reset());

function claude(settings: Record<string, unknown> = {}): Promise<CodeGenerator> {
  const config = makeConfig({
    execution: {
      code_generator: 'claude_code',
      generators: { claude_code: { base_url: llm.anthropicBaseUrl, ...settings } },
    },
  });
  return createCodeGenerator(config, { env: { ANTHROPIC_API_KEY: SECRET_KEY } });
}

const PLAN = '1. Read context.beam.samples\n2. Average them\n3. Store in results';
const CODE = '```python\nvalues = context.beam.samples\nresults = {"mean": sum(values) / len(values)}\n```';
const CODE_TEXT = 'values = context.beam.samples\nresults = {"mean": sum(values) / len(values)}';
const REVISED =
  'Found an issue with empty samples.\n```python\nvalues = context.beam.samples\nresults = {"mean": sum(values) / len(values) if values else None}\n```';

describe('claude_code generator (Anthropic Messages)', () => {
  describe('with the fast profile', () => {
    it('makes one call that carries the request and gives its code', async () => {
      llm.script(CODE);
      const result = await (await claude({ profile: 'fast' })).generate(makeRequest(), never);
      assert.equal(llm.requests.length, 1);
      const [req] = llm.requests;
      assert.equal(req?.path, '/v1/messages');
      assert.equal(req?.model, 'claude-haiku-4-5-20251001');
      assert.match(req!.system, /dictionary variable named `results`/);
      assert.match(req!.lastUserMessage, /\*\*Your Task:\*\* Compute the mean of the beam current samples/);
      assert.match(req!.lastUserMessage, /one ```python fenced block/);
      assert.equal(result.code, CODE_TEXT);
      assert.equal(result.generator, 'claude_code');
      assert.deepEqual(result.metadata?.['phases'], ['generate']);
    });
  });

  describe('with the balanced profile', () => {
    it('plans, then writes the code in the same conversation', async () => {
      llm.script(PLAN, CODE);
      const result = await (await claude({ profile: 'balanced' })).generate(makeRequest(), never);
      assert.equal(llm.requests.length, 2);
      const [plan, code] = llm.requests;
      assert.match(plan!.lastUserMessage, /write a short numbered plan/);
      assert.match(plan!.lastUserMessage, /\*\*Your Task:\*\*/);
      assert.deepEqual(
        code!.messages.map((m) => m.role),
        ['user', 'assistant', 'user'],
      );
      assert.equal(code!.messages[1]?.content, PLAN);
      assert.match(code!.lastUserMessage, /Now implement the plan/);
      assert.equal(result.code, CODE_TEXT);
    });
  });

  describe('with the robust profile', () => {
    it('plans, writes, then reviews, in that order, and keeps approved code', async () => {
      llm.script(
        { text: PLAN, usage: { inputTokens: 100, outputTokens: 10 } },
        { text: CODE, usage: { inputTokens: 200, outputTokens: 20 } },
        {
          text: 'APPROVED',
          usage: { inputTokens: 300, outputTokens: 1 },
        },
      );
      const result = await (await claude({ profile: 'robust' })).generate(makeRequest(), never);
      assert.equal(llm.requests.length, 3);
      assert.match(llm.requests[0]!.lastUserMessage, /numbered plan/);
      assert.match(llm.requests[1]!.lastUserMessage, /Now implement the plan/);
      assert.match(llm.requests[2]!.lastUserMessage, /Review the program above/);
      assert.equal(llm.requests[2]!.messages.length, 5);
      assert.equal(result.code, CODE_TEXT);
      assert.equal(result.metadata?.['revised'], false);
      assert.deepEqual(result.usage, { inputTokens: 600, outputTokens: 31 });
    });

    it('takes the revised program when the review changes it', async () => {
      llm.script(PLAN, CODE, REVISED);
      const result = await (await claude({ profile: 'robust' })).generate(makeRequest(), never);
      assert.match(result.code, /if values else None/);
      assert.equal(result.metadata?.['revised'], true);
    });

    it('skips the plan on a retry and feeds the error chain to the code call', async () => {
      llm.script(CODE, 'APPROVED');
      await (await claude({ profile: 'robust' })).generate(makeRequest({ errorChain: [runtimeError(1)] }), never);
      assert.equal(llm.requests.length, 2);
      assert.match(llm.requests[0]!.lastUserMessage, /\*\*Attempt 1 - EXECUTION FAILED\*\*/);
      assert.match(llm.requests[0]!.lastUserMessage, /NameError: name 'mean' is not defined/);
      assert.match(llm.requests[0]!.lastUserMessage, /one ```python fenced block/);
      assert.match(llm.requests[1]!.lastUserMessage, /Review the program above/);
    });
  });

  describe('with a profile from config', () => {
    it('uses its phases and model', async () => {
      llm.script(CODE, 'APPROVED');
      const gen = await claude({
        profile: 'careful',
        profiles: { careful: { phases: ['generate', 'review'], model: 'claude-test-model' } },
      });
      await gen.generate(makeRequest(), never);
      assert.deepEqual(
        llm.requests.map((r) => r.model),
        ['claude-test-model', 'claude-test-model'],
      );
    });

    it("reads the profiles of Osprey's claude_config_path, mapping its phases", async () => {
      const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/generators');
      const config = makeConfig({
        pyexec: { config_dir: fixtures },
        execution: {
          code_generator: 'claude_code',
          generators: {
            claude_code: {
              base_url: llm.anthropicBaseUrl,
              profile: 'robust',
              claude_config_path: 'claude_generator_config.yml',
            },
          },
        },
      });
      llm.script(PLAN, CODE);
      const gen = await createCodeGenerator(config, { env: { ANTHROPIC_API_KEY: SECRET_KEY } });
      const result = await gen.generate(makeRequest(), never);
      assert.deepEqual(result.metadata?.['phases'], ['plan', 'generate']);
      assert.deepEqual(
        llm.requests.map((r) => r.model),
        ['claude-osprey-robust-model', 'claude-osprey-robust-model'],
      );
    });

    it('refuses an unknown profile or a phase order that cannot work, naming the key', async () => {
      await assert.rejects(
        claude({ profile: 'turbo' }),
        (err: unknown) =>
          err instanceof ConfigError &&
          /execution\.generators\.claude_code\.profile: unknown profile 'turbo'/.test(err.message),
      );
      await assert.rejects(
        claude({ profile: 'x', profiles: { x: { phases: ['review', 'generate'] } } }),
        /execution\.generators\.claude_code\.profiles\.x\.phases: must be one of/,
      );
    });
  });

  describe('when the reply or the endpoint fails', () => {
    it('throws CodeGenerationError when the code phase gives no code', async () => {
      llm.script(PLAN, 'I would rather not.');
      await assert.rejects((await claude({ profile: 'balanced' })).generate(makeRequest(), never), CodeGenerationError);
    });

    it('retries a 429 with backoff inside one generation and succeeds', async () => {
      llm.script({ status: 429 }, CODE);
      const result = await (await claude()).generate(makeRequest(), never);
      assert.equal(result.code, CODE_TEXT);
      assert.deepEqual(
        llm.requests.map((r) => r.status),
        [429, 200],
      );
    });

    it('throws GeneratorUnavailableError when the API stays overloaded', async () => {
      llm.script({ status: 529 }, { status: 529 }, { status: 529 });
      await assert.rejects((await claude()).generate(makeRequest(), never), GeneratorUnavailableError);
      assert.equal(llm.requests.length, 3);
    });

    it('throws a terminal GeneratorConfigError for a 401, naming the key variable', async () => {
      llm.script({ status: 401, errorMessage: 'invalid x-api-key' });
      await assert.rejects((await claude()).generate(makeRequest(), never), (err: unknown) => {
        assert.ok(err instanceof GeneratorConfigError);
        assert.match(err.message, /ANTHROPIC_API_KEY/);
        return true;
      });
      assert.equal(llm.requests.length, 1);
    });

    it('refuses to start without a key for the public API', async () => {
      const config = makeConfig({ execution: { code_generator: 'claude_code' } });
      await assert.rejects(createCodeGenerator(config, { env: {} }), /ANTHROPIC_API_KEY is not set/);
    });
  });

  describe('when saving prompts', () => {
    it('writes each phase prompt and reply in call order', async () => {
      const folder = await tempFolder();
      try {
        llm.script(PLAN, CODE, REVISED);
        await (await claude({ profile: 'robust' })).generate(makeRequest({ executionFolder: folder.dir }), never);
        const files = await readTree(folder.dir);
        assert.deepEqual(Object.keys(files).sort(), [
          'prompts/attempt_01/01_plan.prompt.txt',
          'prompts/attempt_01/01_plan.response.txt',
          'prompts/attempt_01/02_generate.prompt.txt',
          'prompts/attempt_01/02_generate.response.txt',
          'prompts/attempt_01/03_review.prompt.txt',
          'prompts/attempt_01/03_review.response.txt',
          'prompts/attempt_01/code.py',
          'prompts/attempt_01/metadata.json',
        ]);
        assert.match(files['prompts/attempt_01/code.py']!, /if values else None/);
        assert.equal(JSON.parse(files['prompts/attempt_01/metadata.json']!).revised, true);
        for (const content of Object.values(files)) assert.ok(!content.includes(SECRET_KEY));
      } finally {
        await folder.remove();
      }
    });
  });
});
