/**
 * Failing closed, and saying what is in force (issue 13): on a machine without Landlock (simulated
 * by test/support/no_landlock.py, a seccomp filter under which the landlock_* system calls fail as
 * on a kernel built without it), a kernel, a local runner and an execution worker refuse to start
 * with the missing feature named, unless the config says the deployment isolates kernels — which
 * is then loud at start-up and in `pyexec status`. `pyexec doctor` reports both cases, and /readyz
 * carries the confinement of an execution worker.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { silentLogger } from '../../src/logger.js';
import { projectRoot, pythonExecutable, pythonPackageDir } from '../../src/python-env.js';
import { Fleet } from '../../src/workers/fleet.js';
import { eventually, redis, stopRedis, testConfig } from '../support/harness.js';

const exec = promisify(execFile);
const bin = path.join(projectRoot, 'bin/pyexec.js');
const noLandlock = path.join(projectRoot, 'test/support/no_landlock.py');
const scratch = mkdtempSync(path.join(tmpdir(), 'pyexec-confine-ops-'));
const children: ChildProcess[] = [];

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await stopRedis();
  rmSync(scratch, { recursive: true, force: true });
});

async function run(command: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await exec(command[0]!, command.slice(1), {
      timeout: 120_000,
      env: { ...process.env, PYEXEC_LOG_LEVEL: 'info', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const withoutLandlock = (...command: string[]) => ['python3', noLandlock, ...command];

function configFile(name: string, overrides: Record<string, unknown>): string {
  const config = testConfig(overrides);
  const file = path.join(scratch, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

describe('on a machine without Landlock', () => {
  it('a kernel refuses to start, naming what is missing, and runs nothing', async () => {
    const connection = path.join(scratch, 'kernel.json');
    writeFileSync(
      connection,
      JSON.stringify({
        shell_port: 0,
        iopub_port: 0,
        stdin_port: 0,
        control_port: 0,
        hb_port: 0,
        ip: '127.0.0.1',
        key: 'k',
        transport: 'tcp',
        signature_scheme: 'hmac-sha256',
      }),
    );
    const r = await run(withoutLandlock(pythonExecutable(), '-m', 'pyexec_runtime.kernel', '-f', connection), {
      PYTHONPATH: pythonPackageDir,
    });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /refusing to start: cannot confine the kernel: this system lacks Landlock/);
    assert.match(r.stderr, /execution\.confinement: deployment/);
  });

  it('a local runner refuses to run the code (exit 78), and the code never ran', async () => {
    const folder = path.join(scratch, 'run');
    mkdirSync(folder, { recursive: true });
    writeFileSync(path.join(folder, 'code.py'), 'open("ran.txt", "w").write("ran")\nresults = {}\n');
    const r = await run(withoutLandlock(pythonExecutable(), '-m', 'pyexec_runtime.runner', folder), {
      PYTHONPATH: pythonPackageDir,
    });
    assert.equal(r.code, 78, r.stderr);
    assert.match(r.stderr, /refusing to run: cannot confine the kernel: this system lacks Landlock/);
    assert.equal(
      (await run(['test', '-e', path.join(folder, 'ran.txt')])).code,
      1,
      'the code ran although the runner was not confined',
    );
  });

  it('an execution worker stops at start-up with the key and the missing features, before any Jupyter server', async () => {
    const server = await redis();
    const file = configFile('landlock', { execution: { execution_method: 'container' } });
    const r = await run(withoutLandlock('node', bin, '--config', file, '--redis', server.url, 'worker', 'execution'));
    assert.equal(r.code, 2, r.stderr + r.stdout);
    assert.match(r.stderr, /execution\.confinement: landlock: this machine cannot confine kernels: it lacks Landlock/);
    assert.doesNotMatch(r.stderr + r.stdout, /started local Jupyter servers/);
  });

  it('pyexec doctor says what is missing and exits 1; with deployment it warns and exits 0', async () => {
    const r = await run(withoutLandlock('node', bin, 'doctor'));
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /Landlock ABI: 0 \(pyexec needs 6\)/);
    assert.match(r.stdout, /missing: Landlock TCP bind\/connect rules/);
    assert.match(r.stdout, /NOT OK/);
    const d = await run(withoutLandlock('node', bin, 'doctor'), { PYEXEC_CONFINEMENT: 'deployment' });
    assert.equal(d.code, 0, d.stdout + d.stderr);
    assert.match(d.stdout, /WARNING: pyexec confines nothing/);
  });

  it('with execution.confinement: deployment a worker starts, says so loudly, and status shows it', async () => {
    const server = await redis();
    const file = configFile('deployment', {
      execution: { execution_method: 'local', confinement: 'deployment' },
    });
    const child = spawn(
      'python3',
      withoutLandlock('node', bin, '--config', file, '--redis', server.url, 'worker', 'execution').slice(1),
      {
        env: { ...process.env, PYEXEC_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    let log = '';
    child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    await eventually(async () => (/fleet process running/.test(log) ? true : undefined), 60_000, 'the worker to run');
    assert.match(log, /execution\.confinement is deployment: pyexec does NOT confine kernels/);
    const status = await eventually(
      async () => {
        const s = await run(['node', bin, '--config', file, '--redis', server.url, 'status']);
        return /kernel confinement/.test(s.stdout) ? s.stdout : undefined;
      },
      60_000,
      'status to show the confinement',
    );
    assert.match(status, /WARNING: kernel confinement: deployment \(NOT confined by pyexec/);
    child.kill('SIGTERM');
  });
});

describe('on this machine (Landlock ABI >= 6)', () => {
  it('pyexec doctor: a confined child is refused every probe, exit 0', async () => {
    const r = await run(['node', bin, 'doctor', '--json']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      selftest: { checks: Record<string, { refused: boolean; errno: number }> };
    };
    assert.equal(report.ok, true);
    const checks = report.selftest.checks;
    assert.deepEqual(Object.keys(checks).sort(), [
      'raw_socket',
      'read_a_file_outside',
      'read_another_process_environ',
      'signal_another_process',
      'tcp_connect_to_a_fleet_port',
      'unix_socket',
    ]);
    for (const [name, c] of Object.entries(checks)) assert.equal(c.refused, true, name);
    assert.equal(checks['tcp_connect_to_a_fleet_port']?.errno, 13);
  });

  it('/readyz of an execution worker carries the confinement in force', async () => {
    const server = await redis();
    const config = testConfig({ execution: { execution_method: 'local' } });
    const fleet = await Fleet.start({
      config,
      redisUrl: server.url,
      logger: silentLogger(),
      stages: ['execution'],
      metricsPort: 0,
    });
    try {
      const res = await fetch(`http://127.0.0.1:${fleet.metricsPort}/readyz`);
      const body = (await res.json()) as { confinement?: { method: string; landlockAbi: number } };
      assert.equal(body.confinement?.method, 'landlock');
      assert.ok((body.confinement?.landlockAbi ?? 0) >= 6, JSON.stringify(body));
    } finally {
      await fleet.close();
      config.cleanup();
    }
  });
});
