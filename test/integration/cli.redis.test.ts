/**
 * The `pyexec` command as people run it (a separate process): the demo end to end, submit and
 * status against a running fleet on a real Redis, approvals from the command line, and the static
 * analysis alone.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/python-env.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';

const exec = promisify(execFile);
const bin = path.join(projectRoot, 'bin/pyexec.js');
const scratch = mkdtempSync(path.join(tmpdir(), 'pyexec-cli-'));
let bed: TestBed | undefined;
after(async () => {
  await stopRedis();
  rmSync(scratch, { recursive: true, force: true });
});
afterEach(async () => {
  await bed?.close();
  bed = undefined;
});

function configFile(b: TestBed): string {
  const file = path.join(b.config.pyexec.execution_root, 'config.yml');
  writeFileSync(file, JSON.stringify({ ...b.config, pyexec: { ...b.config.pyexec, metrics_port: 0 } }));
  return file;
}

async function pyexec(args: string[], opts: { input?: string; env?: Record<string, string> } = {}) {
  const child = exec('node', [bin, ...args], {
    timeout: 180_000,
    env: { ...process.env, PYEXEC_LOG_LEVEL: 'warn', ...opts.env },
  });
  if (opts.input !== undefined) {
    child.child.stdin?.end(opts.input);
  }
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('pyexec command', () => {
  it('demo: runs a read, a plot and an approved magnet ramp on a private fleet, all succeeding', async () => {
    const r = await pyexec(['demo'], { env: { PYEXEC_STATE_DIR: path.join(scratch, 'state') } });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /\[ramp\] approval required/);
    assert.match(r.stdout, /approved by demo-approver through the approver API/);
    assert.match(r.stdout, /audit: approved by demo-approver/);
    assert.match(r.stdout, /MAG:QF1:CURRENT:RB = 0\.5/);
    assert.match(r.stdout, /all requests succeeded/);
  });

  it('submit --wait --json prints the response of a request run by the fleet; status shows the stages', async () => {
    bed = await testBed();
    await bed.startFleet();
    const file = configFile(bed);
    const r = await pyexec(['--config', file, '--redis', bed.redisUrl, 'submit', '-', '--wait', '--json'], {
      input: JSON.stringify(sampleRequest()),
    });
    assert.equal(r.code, 0, r.stderr);
    const response = JSON.parse(r.stdout);
    assert.equal(response.status, 'succeeded');
    assert.equal(response.results.value, 42);
    const s = await pyexec(['--config', file, '--redis', bed.redisUrl, 'status', '--json']);
    assert.equal(s.code, 0, s.stderr);
    const stages = JSON.parse(s.stdout).stages as { stage: string; completed: number; workers: number }[];
    assert.deepEqual(
      stages.map((x) => x.stage),
      ['generation', 'analysis', 'approval', 'execution', 'result'],
    );
    assert.ok(stages.find((x) => x.stage === 'execution')!.completed >= 1);
    assert.ok(stages.every((x) => x.workers >= 1));
  });

  it('up runs the fleet; submit finds it without flags; SIGTERM stops it cleanly', async () => {
    const stateDir = path.join(scratch, 'up-state');
    const env = {
      ...process.env,
      PYEXEC_LOG_LEVEL: 'warn',
      PYEXEC_STATE_DIR: stateDir,
      PYEXEC_METRICS_PORT: '0',
      PYEXEC_APPROVER_PORT: '0',
      PYEXEC_EXECUTION_ROOT: path.join(scratch, 'up-runs'),
    };
    const up = spawn('node', [bin, 'up', '--no-ioc'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      await new Promise<void>((resolve, reject) => {
        up.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('pyexec is up')) resolve();
        });
        up.once('exit', (code) => reject(new Error(`up exited early (${code}): ${out}`)));
      });
      assert.ok(existsSync(path.join(stateDir, 'up.json')));
      // The private Redis has a password: in the state file, readable by its owner only, never printed.
      const state = JSON.parse(readFileSync(path.join(stateDir, 'up.json'), 'utf8')) as { redisUrl: string };
      const password = new URL(state.redisUrl).password;
      assert.match(password, /^[0-9a-f]{48}$/);
      assert.equal(statSync(path.join(stateDir, 'up.json')).mode & 0o777, 0o600);
      assert.ok(!out.includes(password), 'up printed the Redis password');
      assert.match(out, /redis redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/);
      const { Redis } = await import('ioredis');
      const anonymous = new Redis(state.redisUrl.replace(`:${password}@`, ''), {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
      });
      anonymous.on('error', () => {});
      await anonymous.connect().catch(() => {});
      await assert.rejects(anonymous.ping(), /NOAUTH|Authentication required/);
      anonymous.disconnect();
      const r = await pyexec(['submit', '-', '--wait', '--json'], {
        input: JSON.stringify(sampleRequest()),
        env: { PYEXEC_STATE_DIR: stateDir },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).status, 'succeeded');
      const exit = new Promise<number | null>((resolve) => up.once('exit', (code) => resolve(code)));
      up.kill('SIGTERM');
      assert.equal(await exit, 0);
      assert.equal(existsSync(path.join(stateDir, 'up.json')), false, 'the state file is removed on shutdown');
    } finally {
      if (up.exitCode === null) up.kill('SIGKILL');
    }
  });

  it('submit refuses an invalid request with a clear error and exit code 2', async () => {
    bed = await testBed();
    const r = await pyexec(['--config', configFile(bed), '--redis', bed.redisUrl, 'submit', '-'], {
      input: '{"user_query": "x"}',
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /task_objective/);
  });

  it('status exits non-zero when Redis is unreachable', async () => {
    const r = await pyexec(['--redis', 'redis://127.0.0.1:1', 'status']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Redis unreachable/);
  });

  it('analyze --json prints exactly the documented keys', async () => {
    const file = path.join(scratch, 'analyze.py');
    writeFileSync(file, "from epics import caput as w\nw('MAG:QF1:CURRENT:SP', 1.0)\nresults = {}\n");
    const r = await pyexec(['analyze', file, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(report), ['syntax_ok', 'has_writes', 'has_reads', 'risk', 'findings']);
    assert.equal(report.syntax_ok, true);
    assert.equal(report.has_writes, true);
    for (const f of report.findings)
      assert.deepEqual(Object.keys(f), ['rule', 'severity', 'line', 'column', 'message']);
    const stdin = await pyexec(['analyze', '-', '--json'], { input: 'x = 1\nresults = {"x": x}\n' });
    assert.equal(JSON.parse(stdin.stdout).has_writes, false);
    const broken = await pyexec(['analyze', '-', '--json'], { input: 'def f(:\n' });
    assert.equal(JSON.parse(broken.stdout).syntax_ok, false);
  });
});
