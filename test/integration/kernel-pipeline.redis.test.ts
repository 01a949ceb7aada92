/**
 * The whole pipeline on the `container` method: a real Redis, Jupyter servers pyexec spawns, and
 * a real soft IOC. Covers what unit tests cannot: an approved write reaching the IOC through the
 * approval hold, a kernel that dies under a request (retried on a fresh kernel by BullMQ), a
 * limits violation ending the request as refused, the request's notebook with its outputs, a
 * dead worker's lease expiring and its kernel being reset before reuse, an exhausted pool failing
 * the lease as an infrastructure error, a kernel gone from its server being replaced, and a server
 * that does not answer being skipped.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { ExecutorUnavailableError } from '../../src/errors.js';
import { createExecutors, type ExecutorSet } from '../../src/executors/index.js';
import { type SpawnedJupyterServer, spawnJupyterServer } from '../../src/executors/jupyter-server.js';
import { JupyterServerClient } from '../../src/executors/kernel-client.js';
import { LeaseStore } from '../../src/executors/kernel-leases.js';
import type { KernelPool } from '../../src/executors/kernel-pool.js';
import { runCell } from '../../src/executors/kernel-run.js';
import { kernelModes } from '../../src/executors/pool-config.js';
import { freePort } from '../../src/free-port.js';
import { silentLogger } from '../../src/logger.js';
import { projectRoot, pythonExecutable } from '../../src/python-env.js';
import { keyPrefix } from '../../src/redis/connection.js';
import { sampleRequest, stopRedis, type TestBed, testBed, testConfig } from '../support/harness.js';
import { iocModes, kernelTask, type SoftIocWithReadOnly, startIocWithReadOnlyPort } from '../support/kernel-support.js';

const exec = promisify(execFile);
let ioc: SoftIocWithReadOnly;
let dir: string;
let bed: TestBed | undefined;
let set: ExecutorSet | undefined;
/** One Jupyter server per mode for the whole file (as a deployment lists them in
 * execution.container.pool.servers); each test's pool starts kernels there, and they are shut down
 * after it. The spawn path itself is covered by kernel-executor, cli and the chaos test. */
let shared: SpawnedJupyterServer[] = [];
let runs: string;

before(async () => {
  ioc = await startIocWithReadOnlyPort();
  dir = mkdtempSync(path.join(tmpdir(), 'pyexec-kpipe-'));
  runs = path.join(dir, 'runs');
  mkdirSync(runs);
  writeFileSync(
    path.join(dir, 'limits.json'),
    JSON.stringify({ 'DEVICE:PV:SETPOINT': { min_value: 0, max_value: 50 } }),
  );
  const config = testConfig({ execution: { modes: iocModes(ioc) } });
  config.cleanup();
  const modes = kernelModes(config);
  shared = await Promise.all(
    (['read_only', 'write_access'] as const).map((mode) =>
      spawnJupyterServer({ modes, serve: [mode], executionRoot: runs }),
    ),
  );
});
after(async () => {
  await Promise.allSettled(shared.map((s) => s.stop()));
  await ioc?.stop();
  await stopRedis();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await bed?.close();
  await set?.close();
  bed = undefined;
  set = undefined;
  // The next test's pool starts from no kernels.
  for (const server of shared) {
    const client = new JupyterServerClient(server);
    for (const id of await client.listKernelIds()) await client.shutdownKernel(id).catch(() => {});
  }
});

/** A fleet whose execution stage runs on kernels of a pool this test process spawns. */
async function fleet(overrides: Record<string, unknown> = {}, pool: Record<string, unknown> = {}) {
  bed = await testBed({
    ...overrides,
    execution: {
      execution_method: 'container',
      modes: iocModes(ioc),
      container: {
        pool: {
          servers: shared.map((s) => ({ url: s.url, token: s.token, modes: [...s.modes], name: s.name })),
          spares_per_mode: 1,
          lease_wait_ms: 60_000,
          reap_interval_ms: 500,
          lease_ttl_ms: 2000,
          ...pool,
        },
      },
      ...(overrides['execution'] as Record<string, unknown>),
    },
    control_system: { writes_enabled: true, limits_checking: { enabled: true, database_path: 'limits.json' } },
    pyexec: { config_dir: dir, execution_root: runs },
  });
  set = await createExecutors(bed.config, {
    redisUrl: bed.redisUrl,
    prefix: keyPrefix(bed.config.pyexec.redis.prefix),
    logger: silentLogger(),
  });
  const f = await bed.startFleet({ executors: set.executors });
  return { bed, set, fleet: f };
}

async function waitWhole(pool: KernelPool, mode: 'read_only' | 'write_access', total: number): Promise<void> {
  // Generous: a kernel's start-up imports take seconds of CPU, far more on a loaded 2-core machine.
  for (let i = 0; i < 1200; i++) {
    const s = (await pool.stats())[mode];
    if (s.total === total && s.idle === total) return;
    await sleep(100);
  }
  assert.fail(`the ${mode} pool did not come back to ${total} idle kernels: ${JSON.stringify(await pool.stats())}`);
}

describe('pipeline on the container method', () => {
  it('runs an approved write: held, approved, and the PV changes at the IOC', async () => {
    await ioc.caput('DEVICE:PV:SETPOINT', 10);
    const code =
      "import epics\nold = epics.caget('DEVICE:PV:SETPOINT')\nepics.caput('DEVICE:PV:SETPOINT', old + 1, wait=True)\nresults = {'old_value': old}";
    const { fleet: f } = await fleet({
      approval: {
        global_mode: 'selective',
        capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } },
      },
      execution: { generators: { mock: { code } } },
    });
    const { requestId } = await bed!.client.submit(sampleRequest());
    const held = await bed!.client.wait(requestId, { timeoutMs: 60_000, returnOnApproval: true });
    assert.equal(held.kind, 'approval_required');
    if (held.kind !== 'approval_required') return;
    assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 10, 'nothing is written before the approval');
    await f.approvals.decide(held.holdJobId, { decision: 'approved', approver: 'alice' });
    const done = await bed!.client.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(done.kind === 'finished' && done.response.status, 'succeeded', JSON.stringify(done));
    assert.equal(done.kind === 'finished' && done.response.execution_mode, 'write_access');
    assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 11);
  });

  it('holds a raw Channel Access program (socket + struct, no EPICS library) under epics_writes; rejected, the PV never moves', async () => {
    await ioc.caput('DEVICE:PV:SETPOINT', 10);
    // The 20-line program of issue 13, aimed at the IOC's read-write port.
    const code = readFileSync(
      path.join(projectRoot, 'test/fixtures/python/detection/write-raw-channel-access-socket-struct.py'),
      'utf8',
    ).replace('("127.0.0.1", 5064)', `("127.0.0.1", ${ioc.port})`);
    const { fleet: f } = await fleet({
      approval: {
        global_mode: 'selective',
        capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } },
      },
      execution: { generators: { mock: { code } } },
    });
    const { requestId } = await bed!.client.submit(sampleRequest());
    const held = await bed!.client.wait(requestId, { timeoutMs: 60_000, returnOnApproval: true });
    assert.equal(held.kind, 'approval_required', JSON.stringify(held));
    if (held.kind !== 'approval_required') return;
    const analysis = JSON.stringify(held);
    assert.match(analysis, /epics-network/, 'the approver sees why');
    await f.approvals.decide(held.holdJobId, { decision: 'rejected', approver: 'alice', reason: 'raw CA' });
    const done = await bed!.client.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(done.kind === 'finished' && done.response.status, 'rejected', JSON.stringify(done));
    assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 10);
  });

  it('retries a request whose kernel died (os._exit) on a fresh kernel, and the pool is whole again', async () => {
    // In the request's execution folder (the kernel's working folder): the only place a confined
    // kernel may write, and the same folder on the retry.
    const marker = `died-once-${Date.now()}`;
    const code = [
      'import os',
      `marker = ${JSON.stringify(marker)}`,
      'first = not os.path.exists(marker)',
      'if first:',
      "    open(marker, 'w').close()",
      '    os._exit(1)',
      "results = {'pid': os.getpid()}",
    ].join('\n');
    const { set: s } = await fleet({ execution: { generators: { mock: { code } } } }, { spares_per_mode: 2 });
    const { requestId } = await bed!.client.submit(sampleRequest());
    const done = await bed!.client.wait(requestId, { timeoutMs: 120_000 });
    assert.equal(done.kind === 'finished' && done.response.status, 'succeeded', JSON.stringify(done));
    assert.equal(
      done.kind === 'finished' && done.response.generation_attempt,
      1,
      'an infrastructure error is retried, not regenerated',
    );
    const folder = done.kind === 'finished' ? (done.response.execution_folder ?? '') : '';
    assert.ok(readFileSync(path.join(folder, marker), 'utf8') === '', 'the first run got as far as the marker');
    await waitWhole(s.pool!, 'read_only', 2);
  });

  it('ends a limits violation as rejected, with no write at the IOC', async () => {
    await ioc.caput('DEVICE:PV:SETPOINT', 10);
    const code = "import epics\nepics.caput('DEVICE:PV:SETPOINT', 99, wait=True)\nresults = {}";
    await fleet({ execution: { generators: { mock: { code } } } });
    const { requestId } = await bed!.client.submit(sampleRequest());
    const done = await bed!.client.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(done.kind, 'finished');
    if (done.kind !== 'finished') return;
    assert.equal(done.response.status, 'rejected');
    assert.equal(done.response.detail, 'limits_violation');
    assert.equal(done.response.generation_attempt, 1, 'a refusal is never regenerated around');
    assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 10);
  });

  it('writes a valid nbformat v4 notebook with the code and its outputs', async () => {
    const code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nprint('plotted')\nresults = {'n': 3}";
    await fleet({ execution: { generators: { mock: { code } } } });
    const { requestId } = await bed!.client.submit(sampleRequest());
    const done = await bed!.client.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(done.kind === 'finished' && done.response.status, 'succeeded', JSON.stringify(done));
    if (done.kind !== 'finished') return;
    const nbPath = done.response.notebook_path!;
    const check = await exec(pythonExecutable(), [
      '-c',
      'import sys, nbformat; nb = nbformat.read(sys.argv[1], as_version=4); nbformat.validate(nb); print(nb.nbformat)',
      nbPath,
    ]);
    assert.match(check.stdout, /^4/);
    const nb = JSON.parse(readFileSync(nbPath, 'utf8'));
    const codeCell = nb.cells.find(
      (c: { cell_type: string; source: string[] }) => c.cell_type === 'code' && c.source.join('').includes('plt.plot'),
    );
    assert.ok(codeCell, 'the code cell');
    const kinds = codeCell.outputs.map((o: { output_type: string; data?: Record<string, unknown> }) =>
      o.data?.['image/png'] ? 'image' : o.output_type,
    );
    assert.ok(kinds.includes('stream'), `outputs: ${kinds}`);
    assert.ok(kinds.includes('image'), `outputs: ${kinds}`);
  });
});

describe('kernel pool upkeep', () => {
  it('resets the kernel of a dead worker once its lease expires, before anyone reuses it', async () => {
    const { set: s } = await fleet({}, { spares_per_mode: 1 });
    const pool = s.pool!;
    await waitWhole(pool, 'read_only', 1);
    // A worker claims the kernel, leaves state in it, and dies without releasing or renewing.
    const redis = new Redis(bed!.redisUrl);
    try {
      const store = new LeaseStore(redis, keyPrefix(bed!.config.pyexec.redis.prefix), pool.id);
      const key = await store.claim('read_only', 'dead-lease', 'dead-worker', 1000);
      assert.ok(key);
      const record = (await store.get(key))!;
      const kernel = await pool.serverClient(record.server)!.connect(record.kernelId, 30_000);
      // Silent: a non-silent cell is refused by the kernel's gate, since no run was set up in it.
      const left = await runCell(kernel, 'dead_worker_was_here = 1', {
        silent: true,
        timeoutMs: 10_000,
        signal: new AbortController().signal,
        maxOutputChars: 1000,
        interruptGraceMs: 1000,
        interrupt: async () => {},
      });
      kernel.dispose();
      assert.equal(left.status, 'ok');
    } finally {
      redis.disconnect();
    }
    await waitWhole(pool, 'read_only', 1);
    const out = await s.executors.container!.execute(
      kernelTask("results = {'seen': 'dead_worker_was_here' in globals()}", 'read_only'),
      new AbortController().signal,
    );
    assert.deepEqual(out.status === 'ok' && out.results, { seen: false });
  });

  it('fails a lease as an infrastructure error when the pool stays exhausted past lease_wait_ms', async () => {
    const { set: s } = await fleet({}, { spares_per_mode: 1, lease_wait_ms: 300 });
    const pool = s.pool!;
    await waitWhole(pool, 'read_only', 1);
    const held = await pool.acquire('read_only', new AbortController().signal);
    try {
      await assert.rejects(pool.acquire('read_only', new AbortController().signal), (err: Error) => {
        assert.ok(err instanceof ExecutorUnavailableError);
        assert.equal(err.started, false);
        assert.equal(err.kind, 'infrastructure');
        return true;
      });
    } finally {
      await held.release();
    }
  });

  it('replaces a kernel that is gone from its server', async () => {
    const { set: s } = await fleet({}, { spares_per_mode: 1 });
    const pool = s.pool!;
    await waitWhole(pool, 'read_only', 1);
    const lease = await pool.acquire('read_only', new AbortController().signal);
    const gone = lease.kernelId;
    await lease.server.shutdownKernel(gone);
    await lease.release();
    await waitWhole(pool, 'read_only', 1);
    const next = await pool.acquire('read_only', new AbortController().signal);
    assert.notEqual(next.kernelId, gone);
    await next.release();
  });

  it('skips a server that does not answer and serves requests from the others', async () => {
    const port = await freePort();
    bed = await testBed({ execution: { execution_method: 'container', modes: iocModes(ioc) } });
    const server = shared.find((s) => s.modes.includes('read_only'))!;
    try {
      (bed.config.execution.container as Record<string, unknown>)['pool'] = {
        servers: [
          { url: `http://127.0.0.1:${port}/`, token: 'x', modes: ['read_only'], name: 'gone' },
          { url: server.url, token: server.token, modes: ['read_only'], name: 'up' },
        ],
        spares_per_mode: 1,
      };
      set = await createExecutors(bed.config, {
        redisUrl: bed.redisUrl,
        prefix: keyPrefix(bed.config.pyexec.redis.prefix),
        logger: silentLogger(),
      });
      assert.equal(await set.ready(), true);
      const out = await set.executors.container!.execute(
        kernelTask("results = {'ok': True}", 'read_only'),
        new AbortController().signal,
      );
      assert.equal(out.status === 'ok' && out.kernel?.startsWith('up/'), true, JSON.stringify(out));
    } finally {
      await set?.close();
      set = undefined;
    }
  });
});
