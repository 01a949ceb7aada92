import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { approvalRequired } from '../../src/analysis/policy.js';
import { loadConfig, parseConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const run = promisify(execFile);

// The three examples of the reference documentation, as written there.
const COMPLETE = `
osprey:
  python_executor:
    max_generation_retries: 3
    max_execution_retries: 3
    execution_timeout_seconds: 600
  execution:
    # Generator selection
    code_generator: "basic" # basic | claude_code | mock | custom
    # Execution environment
    execution_method: "container" # or "local"
    # Generator-specific configuration
    generators:
      basic:
        # Option 1: Reference existing model config
        model_config_name: "python_code_generator"
        # Option 2: Inline configuration
        # provider: "openai"
        # model_id: "gpt-4"
      claude_code:
        profile: "fast" # fast | balanced | robust
        claude_config_path: "claude_generator_config.yml" # optional
      mock:
        behavior: "success" # success | syntax_error | runtime_error | epics_write
    # Execution modes
    modes:
      read_only:
        kernel_name: "python3-epics-readonly"
        allows_writes: false
        requires_approval: false
      write_access:
        kernel_name: "python3-epics-write"
        allows_writes: true
        requires_approval: true
    # Container settings
    container:
      jupyter_host: "localhost"
      jupyter_port: 8888
    # Local execution settings
    local:
      python_env_path: "\${LOCAL_PYTHON_VENV}"
`;
const APPROVAL = `
approval:
  global_mode: "selective"
  capabilities:
    python_execution:
      enabled: true
      mode: "epics_writes" # disabled | all_code | epics_writes
`;
const PATTERNS = `
control_system:
  type: epics
  patterns:
    epics:
      write:
        - 'epics\\.caput\\('
        - '\\.put\\('
      read:
        - 'epics\\.caget\\('
        - '\\.get\\('
`;

describe('configuration', () => {
  describe("the reference's examples", () => {
    it('loads the Complete Service Configuration as written, expanding the LOCAL_PYTHON_VENV variable', () => {
      const c = parseConfig(parse(COMPLETE), { LOCAL_PYTHON_VENV: '/opt/venv' });
      assert.equal(c.execution.code_generator, 'basic');
      assert.equal(c.execution.execution_method, 'container');
      assert.equal(c.execution.generators['basic']?.['model_config_name'], 'python_code_generator');
      assert.equal(c.execution.modes.write_access.kernel_name, 'python3-epics-write');
      assert.equal(c.execution.container['jupyter_port'], 8888);
      assert.equal(c.execution.local.python_env_path, '/opt/venv');
      assert.equal(c.python_executor.execution_timeout_seconds, 600);
    });

    it('leaves an unset variable unset instead of failing', () => {
      const c = parseConfig(parse(COMPLETE), {});
      assert.equal(c.execution.local.python_env_path, undefined);
    });

    it('loads the Approval Configuration and maps epics_writes', () => {
      const c = parseConfig(parse(APPROVAL), {});
      assert.equal(c.approval.capabilities.python_execution.mode, 'epics_writes');
      assert.equal(approvalRequired(c, true).required, true);
      assert.equal(approvalRequired(c, false).required, false);
    });

    it('loads the Pattern Detection example', () => {
      const c = parseConfig(parse(PATTERNS), {});
      assert.deepEqual(c.control_system.patterns['epics']?.write, ['epics\\.caput\\(', '\\.put\\(']);
      assert.equal(c.control_system.patterns['epics']?.mode, 'extend');
    });
  });

  describe('approval policy', () => {
    it('fails closed: a missing approval section requires approval for all code', () => {
      const c = parseConfig({}, {});
      assert.equal(approvalRequired(c, false).required, true);
    });
    it('accepts control_writes as an alias of epics_writes', () => {
      const c = parseConfig({ approval: { capabilities: { python_execution: { mode: 'control_writes' } } } }, {});
      assert.equal(c.approval.capabilities.python_execution.mode, 'epics_writes');
    });
    it('global disabled turns approval off, all_capabilities turns a disabled capability on', () => {
      assert.equal(approvalRequired(parseConfig({ approval: { global_mode: 'disabled' } }, {}), true).required, false);
      const on = parseConfig(
        {
          approval: {
            global_mode: 'all_capabilities',
            capabilities: { python_execution: { enabled: false, mode: 'all_code' } },
          },
        },
        {},
      );
      assert.equal(approvalRequired(on, false).required, true);
    });
  });

  describe('a broken config', () => {
    it('is one readable error naming the key and the problem', () => {
      assert.throws(
        () =>
          parseConfig(
            {
              python_executor: { max_generation_retries: 'three' },
              approval: { capabilities: { python_execution: { mode: 'sometimes' } } },
            },
            {},
          ),
        (err: Error) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, /python_executor\.max_generation_retries/);
          assert.match(err.message, /approval\.capabilities\.python_execution\.mode/);
          return true;
        },
      );
    });
    it('rejects an invalid regex in control_system.patterns at load', () => {
      assert.throws(
        () => parseConfig({ control_system: { patterns: { epics: { write: ['caput('] } } } }, {}),
        /control_system\.patterns\.epics\.write\[0\]|invalid regex/,
      );
    });
    it('reports YAML syntax errors with the file name', () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-cfg-'));
      const file = path.join(dir, 'config.yml');
      writeFileSync(file, 'execution: [unclosed\n');
      assert.throws(
        () => loadConfig(file, {}),
        (err: Error) => err instanceof ConfigError && err.message.includes(file),
      );
    });
    it('makes the CLI exit non-zero with the error on stderr before doing anything', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-cfg-'));
      const file = path.join(dir, 'config.yml');
      writeFileSync(file, 'pyexec:\n  concurrency:\n    execution: 0\n');
      const err = await run('node', ['bin/pyexec.js', '--config', file, 'worker', 'execution'], {
        timeout: 30_000,
      }).catch((e) => e);
      assert.equal(err.code, 2);
      assert.match(err.stderr, /pyexec\.concurrency\.execution/);
    });
  });

  it('gives a value that is one whole variable the YAML type of its expansion', () => {
    const port = '$' + '{PORT:-9464}';
    const c = parseConfig({ pyexec: { metrics_port: port, redis: { prefix: '$' + '{P:-x}' } } }, { PORT: '9500' });
    assert.equal(c.pyexec.metrics_port, 9500);
    assert.equal(parseConfig({ pyexec: { metrics_port: port } }, {}).pyexec.metrics_port, 9464);
    assert.equal(c.pyexec.redis.prefix, 'x');
  });

  it('loads the shipped config.yml', () => {
    const c = loadConfig('config.yml', {});
    assert.equal(c.execution.code_generator, 'mock');
    assert.equal(c.pyexec.metrics_port, 9464);
  });

  it('resolves execution_root against the config file folder', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-cfg-'));
    const file = path.join(dir, 'config.yml');
    writeFileSync(file, 'pyexec:\n  execution_root: ./runs\n');
    assert.equal(loadConfig(file, {}).pyexec.execution_root, path.join(dir, 'runs'));
  });
});
