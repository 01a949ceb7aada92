/**
 * `pyexec status` tells the truth about the workers for as long as they live: `pyexec up` and a
 * `pyexec worker` process (real processes, a real private redis-server) announce themselves with
 * heartbeats, their entries outlive many presence TTLs while they run, and a worker process killed
 * with SIGKILL (no chance to say goodbye) drops out once its last entry expires. Short heartbeat
 * intervals come from the config (pyexec.presence), not from long sleeps.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { projectRoot } from '../../src/python-env.js';
import { eventually } from '../support/harness.js';

const exec = promisify(execFile);
const bin = path.join(projectRoot, 'bin/pyexec.js');
const scratch = mkdtempSync(path.join(tmpdir(), 'pyexec-presence-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

const HEARTBEAT_MS = 200;
const TTL_MS = 1000;
const configFile = path.join(scratch, 'config.yml');
writeFileSync(
  configFile,
  JSON.stringify({
    execution: { code_generator: 'mock', execution_method: 'local' },
    pyexec: {
      execution_root: path.join(scratch, 'runs'),
      metrics_port: 0,
      approver: { port: 0 },
      concurrency: { generation: 1, analysis: 2, approval: 1, execution: 3, result: 1 },
      presence: { heartbeat_ms: HEARTBEAT_MS, ttl_ms: TTL_MS },
    },
  }),
);
const env = { ...process.env, PYEXEC_LOG_LEVEL: 'warn', PYEXEC_STATE_DIR: path.join(scratch, 'state') };

interface Row {
  stage: string;
  workers: number;
  capacity: number;
}

async function status(): Promise<Record<string, Row>> {
  const { stdout } = await exec('node', [bin, '--config', configFile, 'status', '--json'], { env, timeout: 60_000 });
  const rows = (JSON.parse(stdout) as { stages: Row[] }).stages;
  return Object.fromEntries(rows.map((r) => [r.stage, r]));
}

function start(args: string[], ready: RegExp): Promise<ChildProcess> {
  const child = spawn('node', [bin, '--config', configFile, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const seen = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) resolve(child);
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (code) => reject(new Error(`pyexec ${args.join(' ')} exited early (${code}): ${out}`)));
  });
}

describe('pyexec status and worker presence', () => {
  it('shows every stage of `up` long after start-up, and drops a killed worker process', async () => {
    await start(['up', '--no-ioc'], /pyexec is up/);
    // Many TTLs later the workers are still there: the heartbeats keep their entries alive.
    await sleep(4 * TTL_MS);
    let rows = await status();
    for (const [stage, slots] of Object.entries({ generation: 1, analysis: 2, approval: 1, execution: 3, result: 1 })) {
      assert.equal(rows[stage]!.workers, 1, `${stage}: ${JSON.stringify(rows[stage])}`);
      assert.equal(rows[stage]!.capacity, slots, stage);
    }

    // A second process for the execution stage joins...
    const { redisUrl } = JSON.parse(readFileSync(path.join(scratch, 'state', 'up.json'), 'utf8')) as {
      redisUrl: string;
    };
    const worker = spawn('node', [bin, '--config', configFile, '--redis', redisUrl, 'worker', 'execution'], {
      env,
      stdio: 'ignore',
    });
    children.push(worker);
    await eventually(async () => ((await status())['execution']!.workers === 2 ? true : undefined), 60_000);
    rows = await status();
    assert.equal(rows['execution']!.capacity, 6);

    // ...and leaves once killed without a chance to clean up (its entry expires after the TTL).
    const killedAt = Date.now();
    worker.kill('SIGKILL');
    await eventually(async () => ((await status())['execution']!.workers === 1 ? true : undefined), 30_000);
    assert.ok(Date.now() - killedAt >= TTL_MS - HEARTBEAT_MS, 'gone only once its entry expired');
    rows = await status();
    assert.equal(rows['execution']!.capacity, 3);
    for (const stage of ['generation', 'analysis', 'approval', 'result']) assert.equal(rows[stage]!.workers, 1, stage);
  });
});
