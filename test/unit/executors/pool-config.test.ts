import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../src/config.js';
import { ConfigError } from '../../../src/errors.js';
import { kernelModes, kernelPoolSettings, loadLimits } from '../../../src/executors/index.js';

const withPool = (pool: unknown, extra: Record<string, unknown> = {}) =>
  parseConfig({ execution: { container: { pool } }, ...extra }, {});

describe('execution.container.pool', () => {
  it('defaults to one spawned server with two warm kernels per mode', () => {
    const s = kernelPoolSettings(parseConfig({}, {}));
    assert.deepEqual(s.servers, []);
    assert.equal(s.spawn.count, 1);
    assert.deepEqual(s.spawn.modes, ['read_only', 'write_access']);
    assert.equal(s.spares_per_mode, 2);
    assert.equal(s.lease_ttl_ms, 30_000);
    assert.equal(s.lease_wait_ms, 30_000);
  });

  it('reads listed servers with their modes and tokens', () => {
    const s = kernelPoolSettings(
      withPool({
        servers: [{ url: 'http://jupyter-read:8888/', token: 't', modes: ['read_only'] }],
        spares_per_mode: 3,
      }),
    );
    assert.equal(s.servers[0]!.url, 'http://jupyter-read:8888/');
    assert.deepEqual(s.servers[0]!.modes, ['read_only']);
    assert.equal(s.spares_per_mode, 3);
  });

  it('fails with a ConfigError naming the key of a bad value', () => {
    assert.throws(
      () => kernelPoolSettings(withPool({ servers: [{ url: 'not a url' }], lease_ttl_ms: 10 })),
      (err: Error) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /execution\.container\.pool\.servers\.0\.url/);
        assert.match(err.message, /execution\.container\.pool\.lease_ttl_ms/);
        return true;
      },
    );
    assert.throws(
      () => kernelPoolSettings(withPool({ servers: [{ url: 'http://a:1/', modes: ['readonly'] }] })),
      /pool\.servers\.0\.modes\.0/,
    );
  });

  it('refuses the same server listed twice', () => {
    assert.throws(
      () => kernelPoolSettings(withPool({ servers: [{ url: 'http://a:1/' }, { url: 'http://a:1/' }] })),
      /duplicate server/,
    );
  });

  it('takes kernel names and environment per mode from execution.modes', () => {
    const m = kernelModes(
      parseConfig(
        {
          execution: {
            modes: {
              read_only: { kernel_name: 'ro', allows_writes: false, environment: { EPICS_CA_ADDR_LIST: 'gw' } },
            },
          },
        },
        {},
      ),
    );
    assert.equal(m.read_only.kernel_name, 'ro');
    assert.deepEqual(m.read_only.environment, { EPICS_CA_ADDR_LIST: 'gw' });
    assert.equal(m.write_access.kernel_name, 'python3-epics-write');
  });
});

describe('control_system.limits_checking', () => {
  it('is off unless enabled', () => {
    assert.equal(loadLimits(parseConfig({}, {})), null);
  });

  it('loads the database relative to the config folder', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-limits-unit-'));
    try {
      writeFileSync(path.join(dir, 'limits.json'), JSON.stringify({ 'A:B': { max_value: 3 } }));
      const config = parseConfig(
        {
          control_system: {
            limits_checking: { enabled: true, database_path: 'limits.json', allow_unlisted_channels: false },
          },
        },
        {},
      );
      config.pyexec.config_dir = dir;
      const limits = loadLimits(config)!;
      assert.deepEqual(limits.database, { 'A:B': { max_value: 3 } });
      assert.equal(limits.allow_unlisted, false);
      assert.equal(limits.on_violation, 'error');
      assert.equal(limits.file, path.join(dir, 'limits.json'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails fast on a missing or malformed database', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-limits-unit-'));
    try {
      const config = parseConfig(
        { control_system: { limits_checking: { enabled: true, database_path: 'limits.json' } } },
        {},
      );
      config.pyexec.config_dir = dir;
      assert.throws(
        () => loadLimits(config),
        (err: Error) => err instanceof ConfigError && /database_path: cannot load/.test(err.message),
      );
      writeFileSync(path.join(dir, 'limits.json'), '{"A": {"max_value": 1},}');
      assert.throws(() => loadLimits(config), ConfigError);
      const noPath = parseConfig({ control_system: { limits_checking: { enabled: true } } }, {});
      assert.throws(() => loadLimits(noPath), /database_path: required/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
