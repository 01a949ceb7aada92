/**
 * Osprey's keys doing their job in a running fleet (real Redis, real Jupyter server, real soft IOC
 * over Channel Access), and a refused config stopping the CLI before it starts any child process.
 * What unit tests cannot show: that a fleet given `jupyter_host` / `jupyter_port` runs its kernels on
 * that server and starts no Jupyter server of its own; that an unknown kernel name is refused by
 * asking the server; that a mode's gateway is where its code's Channel Access goes (a read through
 * the read-only gateway, a write observed at the IOC through the write gateway); that
 * `write_access.allows_writes: false` leaves the PV unchanged.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { type SpawnedJupyterServer, spawnJupyterServer } from '../../src/executors/jupyter-server.js';
import { kernelModes } from '../../src/executors/pool-config.js';
import { silentLogger } from '../../src/logger.js';
import { preflight } from '../../src/ops/preflight.js';
import { projectRoot } from '../../src/python-env.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';
import { type SoftIocWithReadOnly, startIocWithReadOnlyPort } from '../support/kernel-support.js';

const exec = promisify(execFile);
let ioc: SoftIocWithReadOnly;
let bed: TestBed | undefined;
const scratch = mkdtempSync(path.join(tmpdir(), 'pyexec-osprey-config-'));

before(async () => {
  ioc = await startIocWithReadOnlyPort();
});
after(async () => {
  await ioc.stop();
  await stopRedis();
  rmSync(scratch, { recursive: true, force: true });
});
afterEach(async () => {
  await bed?.close();
  bed = undefined;
});

/** The Jupyter servers (jupyter_server processes) this test process has started. */
async function jupyterChildren(): Promise<number[]> {
  const { stdout } = await exec('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)]);
  return stdout
    .split('\n')
    .filter((l) => /jupyter_server|jupyter-server|jupyterlab/.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

/** Gateways for both modes on the soft IOC, and mode environments that would reach nothing on their own. */
function gatewayExecution(extraModes: Record<string, unknown> = {}) {
  const nowhere = { EPICS_CA_ADDR_LIST: '127.0.0.1', EPICS_CA_SERVER_PORT: '1', EPICS_CA_AUTO_ADDR_LIST: 'NO' };
  return {
    epics: {
      gateways: {
        read_only: { address: '127.0.0.1', port: ioc.readOnlyPort! },
        write_access: { address: '127.0.0.1', port: ioc.port },
      },
    },
    modes: {
      read_only: {
        gateway: 'read_only',
        environment: { ...nowhere, EPICS_CA_REPEATER_PORT: ioc.env['EPICS_CA_REPEATER_PORT']! },
      },
      write_access: {
        gateway: 'write_access',
        environment: { ...nowhere, EPICS_CA_REPEATER_PORT: ioc.env['EPICS_CA_REPEATER_PORT']! },
        ...extraModes,
      },
    },
  };
}

async function run(behavior: string, overrides: Record<string, unknown>) {
  const { requestId } = await bed!.client.submit(sampleRequest());
  const res = await bed!.client.wait(requestId, { timeoutMs: 90_000 });
  assert.equal(res.kind, 'finished', `${behavior}: ${JSON.stringify(res)} ${JSON.stringify(overrides)}`);
  return res.kind === 'finished' ? res.response : (undefined as never);
}

describe("Osprey's execution.container.jupyter_host / jupyter_port", () => {
  let server: SpawnedJupyterServer;
  before(async () => {
    // The "existing" server, as an Osprey deployment's Jupyter container would be: started outside the fleet.
    server = await spawnJupyterServer({ modes: kernelModes(parseConfig({}, {})) });
  });
  after(() => server.stop());

  it('a fleet pointed at an existing server runs its kernels there and starts no server of its own', async () => {
    const url = new URL(server.url);
    bed = await testBed({
      execution: {
        execution_method: 'container',
        container: {
          jupyter_host: url.hostname,
          jupyter_port: Number(url.port),
          jupyter_token: server.token,
          pool: { spares_per_mode: 1 },
        },
      },
    });
    const before = await jupyterChildren();
    await bed.startFleet();
    const r = await run('success', {});
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error_chain));
    assert.deepEqual(await jupyterChildren(), before, 'no Jupyter server was started by the fleet');
    const kernels = (await (
      await fetch(new URL('api/kernels', server.url), { headers: { authorization: `token ${server.token}` } })
    ).json()) as { name: string }[];
    assert.ok(
      kernels.some((k) => k.name === 'python3-epics-readonly'),
      `the pool's kernels run on the existing server: ${JSON.stringify(kernels.map((k) => k.name))}`,
    );
  });

  it('refuses a kernel name the server does not have, naming the key and what it has', async () => {
    const url = new URL(server.url);
    const config = parseConfig(
      {
        execution: {
          container: { jupyter_host: url.hostname, jupyter_port: Number(url.port), jupyter_token: server.token },
          modes: { write_access: { kernel_name: 'python3-epics-nope' } },
        },
      },
      {},
    );
    const err = await preflight(config, { logger: silentLogger(), stages: ['execution'] }).catch((e: unknown) => e);
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(
      err.message,
      /execution\.modes\.write_access\.kernel_name: 'python3-epics-nope' is not a kernel of the Jupyter server .* \(it has: .*python3-epics-write/,
    );
    const wrongToken = parseConfig(
      {
        execution: { container: { jupyter_host: url.hostname, jupyter_port: Number(url.port), jupyter_token: 'nope' } },
      },
      {},
    );
    await assert.rejects(
      preflight(wrongToken, { logger: silentLogger(), stages: ['execution'] }),
      /refused the token \(HTTP 403\); check jupyter_token/,
    );
  });
});

describe("Osprey's execution.epics.gateways and modes.<mode>.gateway", () => {
  it("a read goes through the read-only mode's gateway, a write through the write mode's (seen at the IOC)", async () => {
    await ioc.caput('DEVICE:PV:SETPOINT', 12.5);
    bed = await testBed({ execution: { generators: { mock: { behavior: 'epics_read' } }, ...gatewayExecution() } });
    await bed.startFleet();
    const read = await run('epics_read', {});
    assert.equal(read.status, 'succeeded', JSON.stringify(read.error_chain));
    assert.equal(read.execution_mode, 'read_only');
    assert.deepEqual(read.results, { value: 12.5, status: 1, operation: 'read_only' });
    await bed.close();

    await ioc.caput('DEVICE:PV:SETPOINT', 10);
    bed = await testBed({ execution: { generators: { mock: { behavior: 'epics_write' } }, ...gatewayExecution() } });
    await bed.startFleet();
    const write = await run('epics_write', {});
    assert.equal(write.status, 'succeeded', JSON.stringify(write.error_chain));
    assert.equal(write.execution_mode, 'write_access');
    assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 11);
  });

  it('write_access.allows_writes: false refuses the write; the PV is unchanged', async () => {
    await ioc.caput('DEVICE:PV:SETPOINT', 10);
    bed = await testBed({
      execution: { generators: { mock: { behavior: 'epics_write' } }, ...gatewayExecution({ allows_writes: false }) },
    });
    await bed.startFleet();
    const r = await run('epics_write', {});
    assert.equal(r.status, 'rejected');
    assert.match(r.reason ?? '', /write_access\.allows_writes is false/);
    assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 10);
  });
});

describe('a refused config', () => {
  it('stops `pyexec up` with the key and the reason before any child process starts', async () => {
    const marker = path.join(scratch, 'redis-server-started');
    const fakeRedis = path.join(scratch, 'redis-server');
    writeFileSync(fakeRedis, `#!/bin/sh\ntouch ${marker}\nexec redis-server "$@"\n`);
    chmodSync(fakeRedis, 0o755);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ pyexec: { concurency: { execution: 2 } } }, /unknown key 'concurency': did you mean 'concurrency'\?/],
      [
        { execution: { code_generator: 'basic', generators: { basic: { model_id: 'm' } } } },
        /execution\.generators\.basic: no API key/,
      ],
      [
        { control_system: { limits_checking: { enabled: true, database_path: './missing-limits.json' } } },
        /control_system\.limits_checking\.database_path: cannot load/,
      ],
    ];
    for (const [doc, pattern] of cases) {
      const file = path.join(scratch, 'config.yml');
      writeFileSync(file, JSON.stringify({ ...doc, pyexec: { metrics_port: 0, ...(doc['pyexec'] as object) } }));
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        PYEXEC_REDIS_SERVER: fakeRedis,
        PYEXEC_STATE_DIR: path.join(scratch, 'state'),
      };
      delete env['OPENAI_API_KEY'];
      delete env['OPENAI_BASE_URL'];
      const r = await exec('node', [path.join(projectRoot, 'bin/pyexec.js'), '--config', file, 'up'], {
        env,
        timeout: 60_000,
      }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(existsSync(marker), false, `redis-server was started before the error: ${r.stderr}`);
    }
    // With a good config the same command starts that redis-server (so the marker can appear).
    writeFileSync(
      path.join(scratch, 'config.yml'),
      JSON.stringify({ pyexec: { metrics_port: 0, approver: { port: 0 } } }),
    );
    const up = spawn(
      'node',
      [
        path.join(projectRoot, 'bin/pyexec.js'),
        '--config',
        path.join(scratch, 'config.yml'),
        'up',
        '--no-ioc',
        '--stages',
        'result',
      ],
      {
        env: {
          ...process.env,
          PYEXEC_REDIS_SERVER: fakeRedis,
          PYEXEC_STATE_DIR: path.join(scratch, 'state'),
          PYEXEC_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        up.stdout.on('data', (d: Buffer) => d.toString().includes('pyexec is up') && resolve());
        up.once('exit', (code) => reject(new Error(`up exited (${code})`)));
      });
      assert.equal(existsSync(marker), true);
    } finally {
      const exited = new Promise((r) => up.once('exit', r));
      up.kill('SIGTERM');
      await exited;
    }
  });
});
