/**
 * Strict configuration: unknown keys are errors with a did-you-mean, the combinations pyexec
 * refuses are refused with the key and the reason, and Osprey's keys do what Osprey's documentation
 * says (existing Jupyter servers, CA gateways per mode, `legacy`, the registry block, allows_writes,
 * an optional claude_config_path). The fleet-level effects (a fleet on an existing Jupyter server,
 * a run through a gateway, the CLI stopping before any child process) are in
 * test/integration/config-osprey.redis.test.ts.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AnalysisReport } from '../../src/analysis/analyzer.js';
import { decidePolicy } from '../../src/analysis/policy.js';
import { type ConfigInput, parseConfig } from '../../src/config.js';
import { didYouMean } from '../../src/config-checks.js';
import { ConfigError } from '../../src/errors.js';
import { kernelModes, kernelPoolSettings } from '../../src/executors/pool-config.js';
import { AnthropicGenerator, createCodeGenerator, OpenAiGenerator } from '../../src/generators/index.js';
import { type FakeLlmServer, startFakeLlmServer } from '../support/fake-llm-server.js';
import { makeRequest, never, SECRET_KEY } from '../support/generator-support.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/generators');

/** The ConfigError of a config, or a failure when it loads. */
function refusal(doc: unknown, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(doc, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail(`the config loaded: ${JSON.stringify(doc)}`);
}

describe('strict configuration', () => {
  describe('unknown keys', () => {
    it('are errors naming the key, with the closest known key', () => {
      const msg = refusal({ pyexec: { concurency: { execution: 4 } } });
      assert.match(msg, /unknown key 'concurency': did you mean 'concurrency'\?/);
      assert.match(msg, /→ at pyexec\.concurency/);
    });

    it('catch a misspelt top-level section and a fleet key written one level too high', () => {
      assert.match(refusal({ pyexex: { metrics_port: 1 } }), /unknown key 'pyexex': did you mean 'pyexec'\?/);
      assert.match(
        refusal({ concurrency: { execution: 2 } }),
        /unknown key 'concurrency': did you mean 'pyexec\.concurrency'\?/,
      );
    });

    it('are found at any depth, including the kernel pool and the modes', () => {
      assert.match(
        refusal({ execution: { modes: { read_only: { kernel: 'x' } } } }),
        /unknown key 'kernel'.*\n.*→ at execution\.modes\.read_only\.kernel/,
      );
      assert.match(refusal({ python_executor: { max_generation_retry: 2 } }), /did you mean 'max_generation_retries'/);
      const pool = parseConfig({ execution: { container: { pool: { spares_per_mod: 3 } } } }, {});
      assert.throws(
        () => kernelPoolSettings(pool),
        /unknown key 'spares_per_mod': did you mean 'spares_per_mode'\?.*\n.*→ at execution\.container\.pool\.spares_per_mod/,
      );
    });

    it('leave an unknown key with no near match without a guess', () => {
      const msg = refusal({ pyexec: { wibble: true } });
      assert.match(msg, /unknown key 'wibble' \(known here: redis, concurrency/);
      assert.equal(didYouMean('wibble', ['redis', 'concurrency']), undefined);
    });

    it('accept the sections of an Osprey config.yml that pyexec does not read', () => {
      const config = parseConfig(
        {
          file_paths: { agent_data_dir: '_agent_data' },
          langgraph: { use_postgres: false },
          control_system: { write_verification: { enabled: true }, connector: { type: 'epics' } },
          approval: { capabilities: { memory: { enabled: true } } },
        },
        {},
      );
      assert.equal(config.control_system.writes_enabled, false);
    });
  });

  describe('refused combinations', () => {
    const cases: [string, ConfigInput | Record<string, unknown>, RegExp][] = [
      [
        'the read-only mode in the write kernel',
        { execution: { modes: { read_only: { kernel_name: 'python3-epics-write' } } } },
        /'python3-epics-write' is also the write_access kernel: read-only code would run in a kernel that may write[\s\S]*→ at execution\.modes\.read_only\.kernel_name/,
      ],
      [
        'a read-only mode that allows writes',
        { execution: { modes: { read_only: { allows_writes: true } } } },
        /must be false: read-only code never writes[\s\S]*→ at execution\.modes\.read_only\.allows_writes/,
      ],
      [
        'a kernel name that is no kernelspec name',
        { execution: { modes: { write_access: { kernel_name: 'python3 epics; rm -rf' } } } },
        /a kernelspec name[\s\S]*→ at execution\.modes\.write_access\.kernel_name/,
      ],
      [
        'a mode naming a gateway that is not defined',
        { execution: { modes: { read_only: { gateway: 'ro' } }, epics: { gateways: { rw: { address: 'gw' } } } } },
        /no gateway 'ro' under execution\.epics\.gateways \(known: rw\)[\s\S]*→ at execution\.modes\.read_only\.gateway/,
      ],
      [
        'an http:// Redis URL',
        { pyexec: { redis: { url: 'http://redis:6379' } } },
        /"http:\/\/redis:6379" is a http URL, not a Redis one; expected redis:\/\/host:port[\s\S]*→ at pyexec\.redis\.url/,
      ],
      [
        'a Redis URL that is no URL',
        { pyexec: { redis: { url: 'not a url' } } },
        /"not a url" is not a URL; expected redis:\/\/\[user:password@\]host:port\[\/db\][\s\S]*→ at pyexec\.redis\.url/,
      ],
      [
        'Jupyter servers given twice',
        {
          execution: {
            container: { jupyter_host: 'jupyter', pool: { servers: [{ url: 'http://jupyter:8888/' }] } },
          },
        },
        /the Jupyter servers are given twice \(execution\.container\.jupyter_host and execution\.container\.pool\.servers\)/,
      ],
      [
        'a jupyter_port without a host',
        { execution: { container: { jupyter_port: 8890 } } },
        /needs execution\.container\.jupyter_host/,
      ],
      [
        'a registry entry that contradicts the generator settings',
        {
          registry: { code_generators: [{ name: 'mine', module_path: './a.mjs' }] },
          execution: { generators: { mine: { module_path: './b.mjs' } } },
        },
        /'\.\/b\.mjs' differs from registry\.code_generators\.0\.module_path '\.\/a\.mjs'/,
      ],
    ];
    for (const [what, doc, pattern] of cases) {
      it(`refuses ${what}`, () => assert.match(refusal(doc), pattern));
    }

    it('names the environment variable when PYEXEC_REDIS_URL is the bad one', () => {
      assert.match(refusal({}, { PYEXEC_REDIS_URL: 'localhost:6379' }), /PYEXEC_REDIS_URL/);
    });

    it('accepts redis:// and rediss:// URLs', () => {
      for (const url of ['redis://127.0.0.1:6379', 'rediss://user:pw@redis.example:6380/2'])
        assert.equal(parseConfig({ pyexec: { redis: { url } } }, {}).pyexec.redis.url, url);
    });
  });
});

describe("Osprey's keys do their job", () => {
  let llm: FakeLlmServer;
  before(async () => {
    llm = await startFakeLlmServer();
  });
  after(() => llm.close());

  it('jupyter_host / jupyter_port select an existing server for both modes (no server is spawned)', () => {
    const settings = kernelPoolSettings(
      parseConfig(
        { execution: { container: { jupyter_host: 'jupyter.local', jupyter_port: 8890, jupyter_token: 't' } } },
        {},
      ),
    );
    assert.deepEqual(settings.servers, [
      {
        name: 'jupyter.local:8890',
        url: 'http://jupyter.local:8890/',
        token: 't',
        modes: ['read_only', 'write_access'],
      },
    ]);
    // Without the keys the pool spawns its own servers (no servers listed).
    assert.deepEqual(kernelPoolSettings(parseConfig({}, {})).servers, []);
  });

  it('services.jupyter.containers select a server per mode, as in an Osprey project', () => {
    const config = parseConfig(
      {
        services: {
          jupyter: {
            path: './jupyter',
            containers: {
              read: { name: 'jupyter-read', hostname: 'jupyter-read', port_host: 8088, execution_modes: ['read_only'] },
              write: {
                name: 'jupyter-write',
                hostname: 'jupyter-write',
                port_host: 8089,
                execution_modes: ['write_access'],
              },
            },
          },
        },
      },
      {},
    );
    assert.deepEqual(
      kernelPoolSettings(config).servers.map((s) => [s.name, s.url, s.modes]),
      [
        ['read', 'http://jupyter-read:8088/', ['read_only']],
        ['write', 'http://jupyter-write:8089/', ['write_access']],
      ],
    );
  });

  it("gateways set each mode's Channel Access address list, over the mode's environment", () => {
    const modes = kernelModes(
      parseConfig(
        {
          execution: {
            epics: {
              gateways: {
                read_only: { address: 'gw-ro.site', port: 5064 },
                write_access: { address: 'gw-rw.site', port: 5084 },
              },
            },
            modes: {
              read_only: {
                gateway: 'read_only',
                environment: { EPICS_CA_ADDR_LIST: '10.0.0.1', EPICS_EXECUTION_MODE: 'read_only' },
              },
              write_access: { gateway: 'write_access' },
            },
          },
        },
        {},
      ),
    );
    assert.deepEqual(modes.read_only.environment, {
      EPICS_CA_ADDR_LIST: 'gw-ro.site',
      EPICS_CA_SERVER_PORT: '5064',
      EPICS_CA_AUTO_ADDR_LIST: 'NO',
      EPICS_EXECUTION_MODE: 'read_only',
    });
    assert.equal(modes.write_access.environment['EPICS_CA_ADDR_LIST'], 'gw-rw.site');
    assert.equal(modes.write_access.environment['EPICS_CA_SERVER_PORT'], '5084');
  });

  it('legacy is an alias of basic: an OpenAI-compatible generator that writes code', async () => {
    llm.reset();
    llm.script('```python\nresults = {"answer": 42}\n```');
    const config = parseConfig(
      {
        execution: {
          code_generator: 'legacy',
          generators: { basic: { base_url: llm.openaiBaseUrl, model_id: 'm-legacy' } },
        },
      },
      {},
    );
    const gen = await createCodeGenerator(config, { env: { OPENAI_API_KEY: SECRET_KEY } });
    assert.ok(gen instanceof OpenAiGenerator);
    const out = await gen.generate(makeRequest(), never);
    assert.equal(out.code.trim(), 'results = {"answer": 42}');
    assert.equal(llm.requests.at(-1)?.model, 'm-legacy');
  });

  it('the registry-style block registers a custom generator, with its settings from generators.<name>', async () => {
    const config = parseConfig(
      {
        registry: {
          code_generators: [
            {
              name: 'domain_specific',
              module_path: './echo-generator.mjs',
              class_name: 'EchoGenerator',
              description: 'Domain-specific code generator',
            },
          ],
        },
        execution: { code_generator: 'domain_specific', generators: { domain_specific: { greeting: 'physics' } } },
        pyexec: { config_dir: FIXTURES },
      },
      {},
    );
    const gen = await createCodeGenerator(config);
    assert.equal(gen.name, 'domain_specific');
    assert.match(
      (await gen.generate(makeRequest(), never)).code,
      /custom generator 'domain_specific'[\s\S]*"greeting": "physics"/,
    );
  });

  it('allows_writes: false on write_access refuses code that writes, naming the key', () => {
    const report = {
      syntaxOk: true,
      hasWrites: true,
      hasReads: false,
      risk: 'medium',
      findings: [],
    } as unknown as AnalysisReport;
    const on = parseConfig({ control_system: { writes_enabled: true } }, {});
    assert.equal(decidePolicy(report, on).refusal, undefined);
    const off = parseConfig(
      { control_system: { writes_enabled: true }, execution: { modes: { write_access: { allows_writes: false } } } },
      {},
    );
    assert.match(decidePolicy(report, off).refusal?.message ?? '', /write_access\.allows_writes is false/);
    const read = { ...report, hasWrites: false } as AnalysisReport;
    assert.equal(decidePolicy(read, off).refusal, undefined);
  });

  it('a claude_config_path that does not exist is a warning; the built-in profiles apply', async () => {
    const warnings: string[] = [];
    const logger = { debug: () => {}, info: () => {}, warn: (_o: object, msg: string) => warnings.push(msg) };
    const config = parseConfig(
      {
        execution: {
          code_generator: 'claude_code',
          generators: {
            claude_code: {
              base_url: llm.anthropicBaseUrl,
              profile: 'fast',
              claude_config_path: 'claude_generator_config.yml',
            },
          },
        },
        pyexec: { config_dir: path.join(FIXTURES, 'no-such-folder') },
      },
      {},
    );
    const gen = await createCodeGenerator(config, { env: { ANTHROPIC_API_KEY: SECRET_KEY }, logger });
    assert.ok(gen instanceof AnthropicGenerator);
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      /claude_config_path: .*claude_generator_config\.yml does not exist \(the file is optional\)/,
    );
  });
});
