import assert from 'node:assert/strict';
import { once } from 'node:events';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ConfigInput } from '../../../src/config.js';
import { ConfigError } from '../../../src/errors.js';
import {
  AnthropicGenerator,
  createCodeGenerator,
  HybridGenerator,
  MockGenerator,
  OpenAiGenerator,
} from '../../../src/generators/index.js';
import { type FakeLlmServer, startFakeLlmServer } from '../../support/fake-llm-server.js';
import { makeConfig, makeRequest, never, runtimeError, SECRET_KEY } from '../../support/generator-support.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/generators');
const ENV = { OPENAI_API_KEY: SECRET_KEY, ANTHROPIC_API_KEY: SECRET_KEY };

let llm: FakeLlmServer;
before(async () => {
  llm = await startFakeLlmServer();
});
after(() => llm.close());
afterEach(() => llm.reset());

function config(execution: NonNullable<ConfigInput['execution']>) {
  return makeConfig({ execution, pyexec: { config_dir: FIXTURES } });
}

const hideAnthropicSdk = async (specifier: string): Promise<unknown> => {
  if (specifier === '@anthropic-ai/sdk') throw new Error("Cannot find package '@anthropic-ai/sdk'");
  return import(specifier);
};

function recordingLogger() {
  const warnings: { obj: object; msg: string }[] = [];
  const noop = () => {};
  return {
    warnings,
    logger: { debug: noop, info: noop, warn: (obj: object, msg: string) => warnings.push({ obj, msg }) },
  };
}

describe('createCodeGenerator', () => {
  describe('with a built-in name', () => {
    it('builds the mock as before', async () => {
      const gen = await createCodeGenerator(
        config({ code_generator: 'mock', generators: { mock: { behavior: 'epics_read' } } }),
      );
      assert.ok(gen instanceof MockGenerator);
    });

    it('builds basic and claude_code on their SDKs', async () => {
      const generators = {
        basic: { base_url: llm.openaiBaseUrl, model_id: 'm' },
        claude_code: { base_url: llm.anthropicBaseUrl, profile: 'balanced' },
      };
      assert.ok(
        (await createCodeGenerator(config({ code_generator: 'basic', generators }), { env: ENV })) instanceof
          OpenAiGenerator,
      );
      assert.ok(
        (await createCodeGenerator(config({ code_generator: 'claude_code', generators }), { env: ENV })) instanceof
          AnthropicGenerator,
      );
    });

    it('refuses an unknown name, naming it and what is available', async () => {
      await assert.rejects(createCodeGenerator(config({ code_generator: 'gpt5_turbo' })), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /execution\.code_generator: generator 'gpt5_turbo' is not available/);
        assert.match(err.message, /basic, claude_code, mock, hybrid/);
        assert.match(err.message, /execution\.generators\.gpt5_turbo\.module_path/);
        return true;
      });
    });
  });

  describe('when @anthropic-ai/sdk cannot be imported', () => {
    it('falls back from claude_code to basic and says so', async () => {
      const { warnings, logger } = recordingLogger();
      const gen = await createCodeGenerator(
        config({
          code_generator: 'claude_code',
          generators: {
            claude_code: { profile: 'robust' },
            basic: { base_url: llm.openaiBaseUrl, model_id: 'fallback-model' },
          },
        }),
        { env: ENV, logger, importModule: hideAnthropicSdk },
      );
      assert.equal(gen.name, 'basic');
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0]!.msg,
        /claude_code: @anthropic-ai\/sdk cannot be imported .*falling back to the basic generator/,
      );
      llm.script('results = {}');
      await gen.generate(makeRequest(), never);
      assert.equal(llm.requests[0]?.path, '/v1/chat/completions');
      assert.equal(llm.requests[0]?.model, 'fallback-model');
    });

    it('says so as a process warning when no logger is given', async () => {
      const warned = once(process, 'warning');
      await createCodeGenerator(
        config({
          code_generator: 'claude_code',
          generators: { basic: { base_url: llm.openaiBaseUrl, model_id: 'm' } },
        }),
        { env: ENV, importModule: hideAnthropicSdk },
      );
      const [warning] = (await warned) as [Error & { code?: string }];
      assert.equal(warning.code, 'PYEXEC_GENERATOR_FALLBACK');
    });

    it('is a config error naming both when basic is not configured either', async () => {
      await assert.rejects(
        createCodeGenerator(config({ code_generator: 'claude_code' }), {
          env: ENV,
          importModule: hideAnthropicSdk,
          logger: recordingLogger().logger,
        }),
        (err: unknown) =>
          err instanceof ConfigError &&
          /falling back to the basic generator, which is not configured/.test(err.message) &&
          /execution\.generators\.basic\.model_id: required/.test(err.message),
      );
    });
  });

  describe('with a custom generator registered by module path', () => {
    it('loads the class export relative to the config folder and uses it, with its settings', async () => {
      const gen = await createCodeGenerator(
        config({
          code_generator: 'echo',
          generators: { echo: { module_path: './echo-generator.mjs', export: 'EchoGenerator', greeting: 'hello' } },
        }),
      );
      assert.equal(gen.name, 'echo');
      const result = await gen.generate(makeRequest({ attempt: 2 }), never);
      assert.match(result.code, /written by the custom generator 'echo'/);
      assert.match(
        result.code,
        /"task": "Compute the mean of the beam current samples", "greeting": "hello", "attempt": 2/,
      );
    });

    it('accepts a factory function, the default export, and Osprey class_name', async () => {
      for (const reg of [
        { module_path: './echo-generator.mjs', export: 'createEchoGenerator' },
        { module_path: './echo-generator.mjs' },
        { module_path: path.join(FIXTURES, 'echo-generator.mjs'), class_name: 'EchoGenerator' },
      ]) {
        const gen = await createCodeGenerator(config({ code_generator: 'mine', generators: { mine: reg } }));
        assert.equal(gen.name, 'mine');
        assert.match((await gen.generate(makeRequest(), never)).code, /"greeting": "hi"/);
      }
    });

    it('takes precedence over a built-in of the same name', async () => {
      const gen = await createCodeGenerator(
        config({ code_generator: 'basic', generators: { basic: { module_path: './echo-generator.mjs' } } }),
      );
      assert.match((await gen.generate(makeRequest(), never)).code, /custom generator 'basic'/);
    });

    const failures: [string, Record<string, unknown>, RegExp][] = [
      [
        'a module that cannot be imported',
        { module_path: './missing.mjs' },
        /execution\.generators\.mine\.module_path: cannot import '\.\/missing\.mjs'/,
      ],
      [
        'a missing export',
        { module_path: './echo-generator.mjs', export: 'Nope' },
        /execution\.generators\.mine\.export: '\.\/echo-generator\.mjs' has no class or function export 'Nope'/,
      ],
      [
        'an export that is not a function',
        { module_path: './echo-generator.mjs', export: 'notAFunction' },
        /has no class or function export 'notAFunction'/,
      ],
      [
        'a class that does not implement the interface',
        { module_path: './echo-generator.mjs', export: 'NotAGenerator' },
        /execution\.generators\.mine: 'NotAGenerator' from '\.\/echo-generator\.mjs' does not implement CodeGenerator/,
      ],
    ];
    for (const [what, reg, message] of failures) {
      it(`refuses ${what} with a config error naming it`, async () => {
        await assert.rejects(
          createCodeGenerator(config({ code_generator: 'mine', generators: { mine: reg } })),
          (err: unknown) => err instanceof ConfigError && message.test(err.message),
        );
      });
    }
  });

  describe('with the hybrid generator', () => {
    it('uses the fast generator first and switches to the quality generator on the first retry', async () => {
      const gen = await createCodeGenerator(
        config({
          code_generator: 'hybrid',
          generators: {
            hybrid: { fast: 'basic', quality: 'claude_code' },
            basic: { base_url: llm.openaiBaseUrl, model_id: 'fast-model' },
            claude_code: { base_url: llm.anthropicBaseUrl, profile: 'fast', model_id: 'quality-model' },
          },
        }),
        { env: ENV },
      );
      assert.ok(gen instanceof HybridGenerator);
      llm.script(
        { api: 'openai', text: 'results = {"v": 1 / 0}' },
        { api: 'anthropic', text: '```python\nresults = {"v": 0}\n```' },
      );

      const first = await gen.generate(makeRequest(), never);
      assert.equal(first.generator, 'basic');
      assert.equal(first.model, 'fast-model');

      const retry = await gen.generate(
        makeRequest({ errorChain: [runtimeError(1, 'ZeroDivisionError: division by zero')] }),
        never,
      );
      assert.equal(retry.generator, 'claude_code');
      assert.equal(retry.code, 'results = {"v": 0}');
      assert.deepEqual(
        llm.requests.map((r) => [r.api, r.model]),
        [
          ['openai', 'fast-model'],
          ['anthropic', 'quality-model'],
        ],
      );
      assert.match(llm.requests[1]!.lastUserMessage, /ZeroDivisionError: division by zero/);
    });

    it('can pair any two generators, custom ones included', async () => {
      const gen = await createCodeGenerator(
        config({
          code_generator: 'hybrid',
          generators: {
            hybrid: { fast: 'mock', quality: 'echo' },
            mock: { behavior: 'runtime_error' },
            echo: { module_path: './echo-generator.mjs' },
          },
        }),
      );
      assert.match((await gen.generate(makeRequest(), never)).code, /100 \/ 0/);
      const retry = await gen.generate(makeRequest({ errorChain: [runtimeError(1)] }), never);
      assert.equal(retry.generator, 'echo');
    });

    it('refuses a hybrid that names itself', async () => {
      await assert.rejects(
        createCodeGenerator(
          config({ code_generator: 'hybrid', generators: { hybrid: { fast: 'mock', quality: 'hybrid' } } }),
        ),
        /execution\.generators\.hybrid: generator cycle hybrid → hybrid/,
      );
    });
  });
});
