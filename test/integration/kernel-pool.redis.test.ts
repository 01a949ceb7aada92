/**
 * One kernel pool shared by two execution worker processes, through leases in a real Redis: a
 * Jupyter server with two read-only kernels, 20 concurrent requests through the whole pipeline.
 * Covers what unit tests cannot: that leases across processes never hand one kernel to two
 * requests at once, and that every request still succeeds when the pool is the bottleneck.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type SpawnedJupyterServer, spawnJupyterServer } from '../../src/executors/jupyter-server.js';
import { kernelModes } from '../../src/executors/pool-config.js';
import { projectRoot } from '../../src/python-env.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';

const CODE = [
  'import os, time',
  't0 = time.time()',
  'time.sleep(0.3)',
  "results = {'pid': os.getpid(), 'start': t0, 'end': time.time()}",
].join('\n');

let jupyter: SpawnedJupyterServer;
let bed: TestBed;
const workers: ChildProcess[] = [];
let dir: string;

function startWorker(configFile: string, redisUrl: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/support/kernel-worker-process.ts', configFile, redisUrl],
    {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  workers.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(child));
    child.once('exit', (code) => reject(new Error(`worker exited (${code}) before it was ready`)));
  });
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'pyexec-pool-test-'));
  bed = await testBed({ execution: { generators: { mock: { code: CODE } }, execution_method: 'container' } });
  jupyter = await spawnJupyterServer({ modes: kernelModes(bed.config), serve: ['read_only'] });
  const pool = {
    servers: [{ url: jupyter.url, token: jupyter.token, modes: ['read_only'], name: 'shared' }],
    spares_per_mode: 2,
    lease_wait_ms: 120_000,
    reap_interval_ms: 1000,
  };
  (bed.config.execution.container as Record<string, unknown>)['pool'] = pool;
  const file = path.join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(bed.config));
  await Promise.all([startWorker(file, bed.redisUrl), startWorker(file, bed.redisUrl)]);
  await bed.startFleet({ stages: ['generation', 'analysis', 'approval', 'result'] });
});

after(async () => {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise((resolve) => {
          if (w.exitCode !== null) return resolve(null);
          w.once('exit', resolve);
          w.kill('SIGTERM');
        }),
    ),
  );
  await bed?.close();
  await jupyter?.stop();
  await stopRedis();
  rmSync(dir, { recursive: true, force: true });
});

describe('a pool of two kernels shared by two execution worker processes', () => {
  it('runs 20 concurrent requests, all successfully, never two on one kernel at once', async () => {
    const ids = await Promise.all(
      Array.from({ length: 20 }, () => bed.client.submit(sampleRequest()).then((r) => r.requestId)),
    );
    const responses = await Promise.all(ids.map((id) => bed.client.wait(id, { timeoutMs: 300_000 })));
    const runs: { pid: number; start: number; end: number }[] = [];
    for (const r of responses) {
      assert.equal(r.kind, 'finished');
      if (r.kind !== 'finished') continue;
      assert.equal(r.response.status, 'succeeded', JSON.stringify(r.response.error_chain));
      runs.push(r.response.results as { pid: number; start: number; end: number });
    }
    // Every request ran in a kernel process of its own (kernels are restarted after each lease):
    // two requests on one kernel at once would have shared a pid.
    assert.equal(new Set(runs.map((r) => r.pid)).size, 20);
    // And never more than the pool's two kernels ran code at the same moment.
    const edges = runs.flatMap((r) => [
      { t: r.start, d: 1 },
      { t: r.end, d: -1 },
    ]);
    edges.sort((a, b) => a.t - b.t || a.d - b.d);
    let running = 0;
    let most = 0;
    for (const e of edges) {
      running += e.d;
      most = Math.max(most, running);
    }
    assert.ok(most <= 2, `${most} requests ran at once on a pool of two kernels`);
  });
});
