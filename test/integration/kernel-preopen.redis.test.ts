/**
 * Websockets opened ahead of a lease (KernelPool.preopen): two pools of one process share a pool
 * id and a real Jupyter server, as two worker processes do. A kernel the other pool started gets a
 * websocket here before it is leased; one whose kernel died or was replaced is never used.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JupyterExecutor } from '../../src/executors/jupyter-executor.js';
import { type SpawnedJupyterServer, spawnJupyterServer } from '../../src/executors/jupyter-server.js';
import { KernelPool } from '../../src/executors/kernel-pool.js';
import { KernelPoolSettings, kernelModes } from '../../src/executors/pool-config.js';
import { silentLogger } from '../../src/logger.js';
import { createRedis, type RedisConnection } from '../../src/redis/connection.js';
import { redis, stopRedis, testConfig } from '../support/harness.js';
import { kernelTask } from '../support/kernel-support.js';

let root: string;
let server: SpawnedJupyterServer;
let conn: RedisConnection;
let a: KernelPool;
let b: KernelPool;

before(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'pyexec-preopen-'));
  const config = testConfig({});
  const modes = kernelModes(config);
  server = await spawnJupyterServer({ modes, serve: ['read_only'], executionRoot: root });
  conn = createRedis((await redis()).url, 'worker');
  // No reaper passes during the tests (each test calls preopen itself).
  const settings = KernelPoolSettings.parse({ spares_per_mode: 1, reap_interval_ms: 3_600_000, lease_wait_ms: 60_000 });
  const options = {
    redis: conn,
    prefix: `test-${path.basename(root)}`,
    poolId: 'shared',
    servers: [server],
    modes,
    settings,
    logger: silentLogger(),
  };
  a = await KernelPool.start(options); // starts the one kernel, and holds its websocket
  b = await KernelPool.start(options); // finds it running: starts none, holds no websocket
});
after(async () => {
  await b?.close();
  await a?.close();
  conn?.disconnect();
  await server?.stop();
  await stopRedis();
  rmSync(root, { recursive: true, force: true });
});

const idle = async (pool: KernelPool) => {
  for (let i = 0; i < 2000; i++) {
    if ((await pool.stats()).read_only.idle >= 1) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no idle kernel');
};

function run(pool: KernelPool, code: string) {
  const executionFolder = mkdtempSync(path.join(root, 'run-'));
  return new JupyterExecutor({ pool }).execute(
    kernelTask(code, 'read_only', { executionFolder }),
    new AbortController().signal,
  );
}

describe('websockets opened ahead of a lease', () => {
  it("opens one to a kernel another pool started, and a lease here runs on the kernel's fresh run", async () => {
    await idle(a);
    const [kernel] = a.openConnections();
    assert.ok(kernel, 'the pool that started the kernel holds its websocket');
    assert.deepEqual(b.openConnections(), []);
    await b.preopen();
    assert.deepEqual(b.openConnections(), [kernel]);
    const out = await run(b, "results = {'ok': 1}");
    assert.equal(out.status, 'ok', JSON.stringify(out));
    assert.equal(out.status === 'ok' && out.kernel, `${server.name}/${kernel.split('|')[1]}`);
    // Used and released: the kernel was replaced, and b holds no websocket to the used one.
    assert.equal(b.openConnections().includes(kernel), false);
  });

  it('drops one whose kernel was replaced by the other pool, and the next lease here runs on the new kernel', async () => {
    await idle(a);
    await b.preopen();
    const [before] = b.openConnections();
    assert.ok(before);
    // The other pool leases and releases it: the kernel is replaced by a fresh one.
    const used = await run(a, "results = {'by': 'a'}");
    assert.equal(used.status, 'ok', JSON.stringify(used));
    await idle(a);
    await b.preopen();
    const after = b.openConnections();
    assert.equal(after.includes(before), false, 'the websocket of the replaced kernel is still kept');
    assert.equal(after.length, 1);
    const out = await run(b, "results = {'by': 'b'}");
    assert.equal(out.status, 'ok', JSON.stringify(out));
  });

  it('does not wait for a kernel that was shut down behind its websocket: the run ends as a kernel death, at once', async () => {
    await idle(a);
    await b.preopen();
    const [key] = b.openConnections();
    assert.ok(key);
    // The kernel goes away behind the pool's back (no lease, no reset: its record still says idle).
    // The server keeps the websocket open, so only the lease's check (beside the request) can tell.
    await b
      .serverClient(server.name)!
      .shutdownKernel(key.split('|')[1]!)
      .catch(() => {});
    const t0 = performance.now();
    // Either the server closed the kept websocket before the lease (a new one cannot connect: the
    // code cannot have run), or it kept it and the check beside the request closed it (the request
    // had gone out: the code may have run, so write code would end needs_review). Which one is a race
    // of the server's; both end the run at once as the kernel's failure, never at the timeout.
    await assert.rejects(run(b, 'results = {}'), (err: Error & { started?: boolean }) => {
      assert.equal(err.name, 'ExecutorUnavailableError', err.message);
      if (/cannot connect to kernel/.test(err.message)) assert.equal(err.started, false);
      else {
        assert.match(err.message, /died while running the code/);
        assert.equal(err.started, true);
      }
      return true;
    });
    assert.ok(performance.now() - t0 < 10_000, 'the lease waited for an answer that could not come');
  });
});
