import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, afterEach, before, describe, it } from 'node:test';
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

// The basic generator through the real `openai` SDK against the fake OpenAI-compatible server.

let llm: FakeLlmServer;
before(async () => {
  llm = await startFakeLlmServer();
});
after(() => llm.close());
afterEach(() => llm.reset());

function basic(settings: Record<string, unknown> = {}): Promise<CodeGenerator> {
  const config = makeConfig({
    execution: {
      code_generator: 'basic',
      generators: { basic: { base_url: llm.openaiBaseUrl, model_id: 'qwen2.5-coder-7b', ...settings } },
    },
  });
  return createCodeGenerator(config, { env: { OPENAI_API_KEY: SECRET_KEY } });
}

describe('basic generator (OpenAI-compatible)', () => {
  describe('when building the prompt', () => {
    it('carries the request fields, the context shape without its values, and asks for a results dict', async () => {
      llm.script('results = {"mean_current_ma": 2.0}');
      await (await basic()).generate(makeRequest(), never);
      const [req] = llm.requests;
      assert.equal(req?.path, '/v1/chat/completions');
      assert.equal(req?.model, 'qwen2.5-coder-7b');
      assert.equal(req?.headers['authorization'], `Bearer ${SECRET_KEY}`);
      const prompt = req!.prompt;
      assert.match(prompt, /\*\*User Query:\*\* What is the average beam current over the last hour\?/);
      assert.match(prompt, /\*\*Your Task:\*\* Compute the mean of the beam current samples/);
      assert.match(prompt, /"mean_current_ma": "float, mA"/);
      assert.match(prompt, /CONTEXT ACCESS DESCRIPTION: samples are under context\.beam\.samples/);
      assert.match(prompt, /- beam: \{samples: array\[2\] of number, unit: string, secret_value: string\}/);
      assert.doesNotMatch(prompt, /do-not-leak-4242/);
      assert.match(req!.system, /dictionary variable named `results`/);
      assert.match(req!.lastUserMessage, /Generate ONLY the Python code\.$/);
      assert.doesNotMatch(prompt, /PREVIOUS ATTEMPT/);
    });

    it('carries the last two errors of the chain on a retry, with the traceback trimmed', async () => {
      llm.script('results = {}');
      const chain = [runtimeError(1, 'ZeroDivisionError: first'), runtimeError(2, 'KeyError: second'), runtimeError(3)];
      await (await basic()).generate(makeRequest({ errorChain: chain }), never);
      const prompt = llm.requests[0]!.prompt;
      assert.match(prompt, /=== PREVIOUS ATTEMPT\(S\) FAILED - LEARN FROM THESE ERRORS ===/);
      assert.doesNotMatch(prompt, /ZeroDivisionError: first/, 'only the last two errors');
      assert.match(prompt, /\*\*Attempt 2 - EXECUTION FAILED\*\*/);
      assert.match(prompt, /\*\*Attempt 3 - EXECUTION FAILED\*\*/);
      assert.match(prompt, /\*\*Error:\*\* NameError: name 'mean' is not defined/);
      assert.match(prompt, /results = \{'mean': mean\(values\)\} {2}# attempt 3/);
      assert.match(prompt, /\.\.\. \(truncated\) \.\.\./);
      assert.match(prompt, /Generate IMPROVED code that fixes these issues\./);
    });
  });

  describe('when the model replies', () => {
    const cases: [string, string, string][] = [
      ['fenced', '```python\nimport math\nresults = {"pi": math.pi}\n```', 'import math\nresults = {"pi": math.pi}'],
      ['bare', 'import math\nresults = {"pi": math.pi}\n', 'import math\nresults = {"pi": math.pi}'],
      [
        'prose-wrapped',
        'Here is the code you asked for:\n\n```python\nvalues = context.beam.samples\nresults = {"mean": sum(values) / len(values)}\n```\n\nIt averages the samples.',
        'values = context.beam.samples\nresults = {"mean": sum(values) / len(values)}',
      ],
    ];
    for (const [shape, reply, expected] of cases) {
      it(`gives the code of a ${shape} reply`, async () => {
        llm.script(reply);
        const result = await (await basic()).generate(makeRequest(), never);
        assert.equal(result.code, expected);
        assert.equal(result.generator, 'basic');
        assert.equal(result.model, 'qwen2.5-coder-7b');
      });
    }

    it('reports token usage and generation time', async () => {
      llm.script({ text: 'results = {}', usage: { inputTokens: 321, outputTokens: 12 } });
      const result = await (await basic()).generate(makeRequest(), never);
      assert.deepEqual(result.usage, { inputTokens: 321, outputTokens: 12 });
      assert.ok(typeof result.durationMs === 'number' && result.durationMs >= 0);
    });

    it('throws CodeGenerationError for an empty reply', async () => {
      llm.script('');
      await assert.rejects((await basic()).generate(makeRequest(), never), (err: unknown) => {
        assert.ok(err instanceof CodeGenerationError);
        assert.match(err.message, /empty reply/);
        return true;
      });
    });

    it('throws CodeGenerationError for a reply with no code', async () => {
      llm.script("I'm sorry, I cannot access the accelerator's data.");
      await assert.rejects((await basic()).generate(makeRequest(), never), CodeGenerationError);
    });
  });

  describe('when the endpoint fails', () => {
    it('retries a 429 with backoff inside one generation and succeeds', async () => {
      llm.script({ status: 429, headers: { 'retry-after-ms': '50' } }, 'results = {"ok": True}');
      const result = await (await basic()).generate(makeRequest(), never);
      assert.equal(result.code, 'results = {"ok": True}');
      assert.equal(llm.requests.length, 2);
      assert.deepEqual(
        llm.requests.map((r) => r.status),
        [429, 200],
      );
      assert.ok(llm.requests[1]!.at - llm.requests[0]!.at >= 45, 'the SDK waited the backoff');
    });

    it('throws GeneratorUnavailableError when the rate limit outlasts the SDK retries', async () => {
      llm.script({ status: 429 }, { status: 429 }, { status: 429 });
      await assert.rejects((await basic()).generate(makeRequest(), never), (err: unknown) => {
        assert.ok(err instanceof GeneratorUnavailableError);
        assert.equal(err.kind, 'infrastructure');
        assert.match(err.message, /rate limiting/);
        return true;
      });
      assert.equal(llm.requests.length, 3, 'one call and max_retries (2) retries');
    });

    it('throws GeneratorUnavailableError for a 5xx after its retries', async () => {
      llm.script({ status: 503 }, { status: 502 });
      await assert.rejects((await basic({ max_retries: 1 })).generate(makeRequest(), never), GeneratorUnavailableError);
      assert.equal(llm.requests.length, 2);
    });

    it('throws GeneratorUnavailableError when the endpoint does not answer in time', async () => {
      llm.script({ text: 'results = {}', delayMs: 2_000 });
      await assert.rejects(
        (await basic({ timeout_ms: 100, max_retries: 0 })).generate(makeRequest(), never),
        (err: unknown) => err instanceof GeneratorUnavailableError && /within 100 ms/.test(err.message),
      );
    });

    it('throws GeneratorUnavailableError when the endpoint is unreachable', async () => {
      const gone = await startFakeLlmServer();
      await gone.close();
      const config = makeConfig({
        execution: {
          code_generator: 'basic',
          generators: { basic: { base_url: gone.openaiBaseUrl, model_id: 'm', max_retries: 0 } },
        },
      });
      const generator = await createCodeGenerator(config, { env: {} });
      await assert.rejects(generator.generate(makeRequest(), never), GeneratorUnavailableError);
    });

    it('throws a terminal GeneratorConfigError for a 401, naming the key variable and never the key', async () => {
      llm.script({ status: 401, errorMessage: `Incorrect API key provided: ${SECRET_KEY}` });
      await assert.rejects((await basic()).generate(makeRequest(), never), (err: unknown) => {
        assert.ok(err instanceof GeneratorConfigError);
        assert.equal(err.kind, 'configuration');
        assert.equal(err.retryable, false);
        assert.match(err.message, /HTTP 401/);
        assert.match(err.message, /OPENAI_API_KEY/);
        assert.ok(!err.message.includes(SECRET_KEY));
        return true;
      });
      assert.equal(llm.requests.length, 1, 'a 401 is not retried');
    });

    it('throws a terminal GeneratorConfigError naming the model for a 404', async () => {
      llm.script({ status: 404, errorMessage: 'The model `qwen2.5-coder-7b` does not exist' });
      await assert.rejects(
        (await basic()).generate(makeRequest(), never),
        (err: unknown) => err instanceof GeneratorConfigError && /no model 'qwen2\.5-coder-7b'/.test(err.message),
      );
    });

    it('throws GeneratorUnavailableError when the worker aborts the generation', async () => {
      llm.script({ text: 'results = {}', delayMs: 2_000 });
      const controller = new AbortController();
      const pending = (await basic()).generate(makeRequest(), controller.signal);
      setTimeout(() => controller.abort(new Error('worker closing')), 50);
      await assert.rejects(
        pending,
        (err: unknown) => err instanceof GeneratorUnavailableError && /aborted/.test(err.message),
      );
    });
  });

  describe('when the worker passes one long-lived signal', () => {
    it('leaves no abort listener on it after many generations', async () => {
      const worker = new AbortController();
      const generator = await basic();
      for (let i = 0; i < 12; i++) {
        llm.script('results = {}');
        await generator.generate(makeRequest(), worker.signal);
      }
      assert.equal(getEventListeners(worker.signal, 'abort').length, 0);
    });
  });

  describe('when saving prompts', () => {
    it('writes the prompt, the raw reply, the code and metadata under prompts/, without the key', async () => {
      const folder = await tempFolder();
      try {
        llm.script('Sure!\n```python\nresults = {"a": 1}\n```');
        await (await basic()).generate(makeRequest({ executionFolder: folder.dir, attempt: 2 }), never);
        const files = await readTree(folder.dir);
        assert.deepEqual(Object.keys(files).sort(), [
          'prompts/attempt_02/01_generate.prompt.txt',
          'prompts/attempt_02/01_generate.response.txt',
          'prompts/attempt_02/code.py',
          'prompts/attempt_02/metadata.json',
        ]);
        assert.match(files['prompts/attempt_02/01_generate.prompt.txt']!, /\*\*Your Task:\*\*/);
        assert.equal(files['prompts/attempt_02/01_generate.response.txt'], 'Sure!\n```python\nresults = {"a": 1}\n```');
        assert.equal(files['prompts/attempt_02/code.py'], 'results = {"a": 1}\n');
        const meta = JSON.parse(files['prompts/attempt_02/metadata.json']!);
        assert.equal(meta.outcome, 'ok');
        assert.equal(meta.model, 'qwen2.5-coder-7b');
        for (const content of Object.values(files)) assert.ok(!content.includes(SECRET_KEY));
      } finally {
        await folder.remove();
      }
    });

    it('keeps the reply of a failed generation for the operator to read', async () => {
      const folder = await tempFolder();
      try {
        llm.script('No code today.');
        await assert.rejects((await basic()).generate(makeRequest({ executionFolder: folder.dir }), never));
        const files = await readTree(folder.dir);
        assert.equal(files['prompts/attempt_01/01_generate.response.txt'], 'No code today.');
        assert.equal(JSON.parse(files['prompts/attempt_01/metadata.json']!).outcome, 'no_code');
      } finally {
        await folder.remove();
      }
    });

    it('saves nothing when save_prompts is false', async () => {
      const folder = await tempFolder();
      try {
        llm.script('results = {}');
        await (await basic({ save_prompts: false })).generate(makeRequest({ executionFolder: folder.dir }), never);
        assert.deepEqual(await readTree(folder.dir), {});
      } finally {
        await folder.remove();
      }
    });
  });

  describe('when configured', () => {
    it('takes model_id and base_url from the named model config', async () => {
      const config = makeConfig({
        models: { coder: { provider: 'vllm', model_id: 'deepseek-coder', base_url: llm.openaiBaseUrl } },
        execution: { code_generator: 'basic', generators: { basic: { model_config_name: 'coder' } } },
      });
      llm.script('results = {}');
      await (await createCodeGenerator(config, { env: {} })).generate(makeRequest(), never);
      assert.equal(llm.requests[0]?.model, 'deepseek-coder');
    });

    it('reads the key from the variable api_key_env names', async () => {
      const config = makeConfig({
        execution: {
          code_generator: 'basic',
          generators: { basic: { base_url: llm.openaiBaseUrl, model_id: 'm', api_key_env: 'MY_LLM_KEY' } },
        },
      });
      llm.script('results = {}');
      await (await createCodeGenerator(config, { env: { MY_LLM_KEY: 'k-123456' } })).generate(makeRequest(), never);
      assert.equal(llm.requests[0]?.headers['authorization'], 'Bearer k-123456');
    });

    it('refuses settings without a model, naming the key', async () => {
      const config = makeConfig({
        execution: { code_generator: 'basic', generators: { basic: { base_url: llm.openaiBaseUrl } } },
      });
      await assert.rejects(
        createCodeGenerator(config, { env: {} }),
        (err: unknown) =>
          err instanceof ConfigError && /execution\.generators\.basic\.model_id: required/.test(err.message),
      );
    });

    it('refuses an unknown model_config_name and an unknown key, naming them', async () => {
      const unknownModel = makeConfig({
        execution: { code_generator: 'basic', generators: { basic: { model_config_name: 'nope' } } },
      });
      await assert.rejects(
        createCodeGenerator(unknownModel, { env: {} }),
        /execution\.generators\.basic\.model_config_name: no model config 'nope'/,
      );
      const typo = makeConfig({
        execution: {
          code_generator: 'basic',
          generators: { basic: { model_id: 'm', base_url: llm.openaiBaseUrl, temprature: 0.2 } },
        },
      });
      await assert.rejects(
        createCodeGenerator(typo, { env: {} }),
        /execution\.generators\.basic\.temprature: unknown key/,
      );
    });

    it('refuses to start against the public API without a key', async () => {
      const config = makeConfig({
        execution: { code_generator: 'basic', generators: { basic: { model_id: 'gpt-4o' } } },
      });
      await assert.rejects(
        createCodeGenerator(config, { env: {} }),
        (err: unknown) => err instanceof ConfigError && /OPENAI_API_KEY is not set/.test(err.message),
      );
    });
  });
});
