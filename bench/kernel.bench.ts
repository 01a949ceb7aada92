/**
 * The container method's costs on this machine, all against Jupyter servers pyexec spawns:
 *
 * 1. the kernel websocket round trip (`requestExecute('x = 1')` on a warm kernel) with stock
 *    jupyter_server and with pyexec's configuration (TCP_NODELAY on the kernel websocket), and the
 *    same round trip over raw ZMQ (jupyter_client, no server in between) for reference;
 * 2. one request through pyexec's executor on a warm kernel (lease, connect, one execute request:
 *    set-up, code, finish; files, release) against the direct round trip on the same server (the floor);
 * 3. lease latency (`KernelPool.acquire`) with a warm pool;
 * 4. time to reset a kernel (restart in place, the after-use path) and to replace one (start a new
 *    kernel and wait for its first reply).
 *
 * Run: node --import tsx bench/kernel.bench.ts [--iterations N]
 * Writes bench/results/kernel.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KernelConnection } from '@jupyterlab/services';
import { Redis } from 'ioredis';
import { parseConfig } from '../src/config.js';
import { JupyterExecutor } from '../src/executors/jupyter-executor.js';
import { type SpawnedJupyterServer, spawnJupyterServer } from '../src/executors/jupyter-server.js';
import { JupyterServerClient } from '../src/executors/kernel-client.js';
import { LeaseStore } from '../src/executors/kernel-leases.js';
import { KernelPool } from '../src/executors/kernel-pool.js';
import { KernelPoolSettings, kernelModes } from '../src/executors/pool-config.js';
import { silentLogger } from '../src/logger.js';
import { pythonExecutable, scrubbedEnv } from '../src/python-env.js';
import { startLocalRedis } from '../src/redis/redis-server.js';
import { PythonExecutionRequest } from '../src/request.js';

const iterArg = process.argv.indexOf('--iterations');
const N = iterArg > 0 ? Number(process.argv[iterArg + 1]) : 200;
const STOCK = 'jupyter_server.services.kernels.connection.channels.ZMQChannelsWebsocketConnection';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (x: number) => x.toFixed(2);
const row = (name: string, xs: number[]) =>
  `| ${name} | ${xs.length} | ${fmt(pct(xs, 50))} | ${fmt(pct(xs, 99))} | ${fmt(Math.min(...xs))} |`;

async function roundTrips(kernel: KernelConnection, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n + 10; i++) {
    const t = performance.now();
    await kernel.requestExecute({ code: 'x = 1', allow_stdin: false, stop_on_error: true, store_history: false }).done;
    if (i >= 10) out.push(performance.now() - t);
  }
  return out;
}

/** The same round trip over raw ZMQ: jupyter_client's blocking client, no server in between. */
function zmqRoundTrips(n: number): number[] {
  const script = `
import json, time
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name='python3')
for _ in range(10): kc.execute_interactive('x = 1', timeout=30)
out = []
for _ in range(${n}):
    t = time.perf_counter(); kc.execute_interactive('x = 1', timeout=30); out.append((time.perf_counter() - t) * 1000)
kc.stop_channels(); km.shutdown_kernel(now=True)
print(json.dumps(out))`;
  const stdout = execFileSync(pythonExecutable(), ['-c', script], {
    env: scrubbedEnv({}),
    encoding: 'utf8',
    timeout: 300_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as number[];
}

const config = parseConfig({});
const modes = kernelModes(config);
const servers: SpawnedJupyterServer[] = [];
const redisServer = await startLocalRedis();
const redis = new Redis(redisServer.url);
const lines: string[] = [];
try {
  // 1. Stock jupyter_server vs pyexec's configuration vs raw ZMQ.
  const stock = await spawnJupyterServer({
    modes,
    serve: ['read_only'],
    extraArgs: [`--ServerApp.kernel_websocket_connection_class=${STOCK}`],
  });
  const tuned = await spawnJupyterServer({ modes, serve: ['read_only'] });
  servers.push(stock, tuned);
  const rt: Record<string, number[]> = {};
  for (const [name, server] of [
    ['stock', stock],
    ['pyexec', tuned],
  ] as const) {
    const client = new JupyterServerClient(server);
    const id = await client.startKernel(modes.read_only.kernel_name);
    const kernel = await client.connect(id, 60_000);
    rt[name] = await roundTrips(kernel, N);
    kernel.dispose();
    await client.shutdownKernel(id);
  }
  await stock.stop();
  rt['zmq'] = zmqRoundTrips(N);

  // 2-4. A pool on the tuned server.
  const settings = KernelPoolSettings.parse({ spares_per_mode: 2, reap_interval_ms: 60_000 });
  const pool = await KernelPool.start({
    redis,
    prefix: '{bench}',
    poolId: 'bench',
    servers: [tuned],
    modes,
    settings,
    logger: silentLogger(),
    privatePool: true,
  });
  const store = new LeaseStore(redis, '{bench}', 'bench');
  const waitIdle = async (n: number) => {
    while ((await pool.stats()).read_only.idle < n) await sleep(20);
  };

  // Lease latency with a warm pool: acquire, then hand the (unused) kernel straight back.
  const lease: number[] = [];
  for (let i = 0; i < N + 10; i++) {
    await waitIdle(2);
    const t = performance.now();
    const l = await pool.acquire('read_only', new AbortController().signal);
    if (i >= 10) lease.push(performance.now() - t);
    const token = `bench-${i}`;
    await store.release(l.kernelKey, l.leaseId, token, 10_000);
    await store.ready(l.kernelKey, 'read_only', token);
    await l.release();
  }

  // A request through the executor on a warm kernel (each kernel is restarted after it).
  const executor = new JupyterExecutor({ pool });
  const folder = mkdtempSync(path.join(os.tmpdir(), 'pyexec-bench-'));
  const request = PythonExecutionRequest.parse({
    user_query: 'q',
    task_objective: 'o',
    execution_folder_name: 'bench',
  });
  const execN = Math.min(N, 40);
  const viaExecutor: number[] = [];
  for (let i = 0; i < execN + 3; i++) {
    await waitIdle(2);
    const t = performance.now();
    const out = await executor.execute(
      {
        requestId: `bench-${i}`,
        code: "x = 1\nresults = {'x': x}",
        mode: 'read_only',
        executionFolder: folder,
        timeoutMs: 30_000,
        request,
      },
      new AbortController().signal,
    );
    if (out.status !== 'ok') throw new Error(`bench request failed: ${JSON.stringify(out)}`);
    if (i >= 3) viaExecutor.push(performance.now() - t);
  }
  rmSync(folder, { recursive: true, force: true });

  // Reset (restart in place) and replace (new kernel, first reply), once the pool is quiet.
  await waitIdle(2);
  const client = new JupyterServerClient(tuned);
  const restart: number[] = [];
  const replace: number[] = [];
  const id = await client.startKernel(modes.read_only.kernel_name);
  for (let i = 0; i < 10; i++) {
    let t = performance.now();
    await client.restartKernel(id);
    (await client.connect(id, 60_000)).dispose();
    restart.push(performance.now() - t);
    t = performance.now();
    const nid = await client.startKernel(modes.read_only.kernel_name);
    (await client.connect(nid, 60_000)).dispose();
    replace.push(performance.now() - t);
    await client.shutdownKernel(nid);
  }
  await client.shutdownKernel(id);
  await pool.close();

  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const versions = execFileSync(
    pythonExecutable(),
    [
      '-c',
      'import jupyter_server, ipykernel, tornado; print(jupyter_server.__version__, ipykernel.__version__, tornado.version)',
    ],
    {
      encoding: 'utf8',
    },
  ).trim();
  const [js, ipk, tornado] = versions.split(' ');
  lines.push(
    '# Kernel pool benchmark',
    '',
    `Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; jupyter_server ${js}, ipykernel ${ipk}, tornado ${tornado}; ${new Date().toISOString().slice(0, 10)}.`,
    'All servers on loopback, spawned by pyexec (`spawnJupyterServer`); code `x = 1` unless said otherwise. Times in ms.',
    '',
    '## Kernel websocket round trip (warm kernel, `requestExecute` → `future.done`)',
    '',
    '| path | n | p50 | p99 | min |',
    '| --- | ---: | ---: | ---: | ---: |',
    row('stock jupyter_server (no TCP_NODELAY on the kernel websocket)', rt['stock']!),
    row("pyexec's jupyter_server_config.py (`NoDelayWebsocketConnection`)", rt['pyexec']!),
    row('raw ZMQ, jupyter_client `execute_interactive` (no server)', rt['zmq']!),
    '',
    `**Finding.** jupyter_server ${js} (tornado ${tornado}) still has the delay: its kernel websocket handler never sets`,
    "TCP_NODELAY, so each small reply frame waits for the peer's delayed ACK (Nagle). pyexec ships",
    '`c.ServerApp.kernel_websocket_connection_class = "pyexec_runtime.jupyter_ws.NoDelayWebsocketConnection"` in',
    '`python/pyexec_runtime/jupyter_server_config.py` (a subclass that calls `set_nodelay(True)` on connect), used by the',
    `servers pyexec spawns and by the kernel image: p50 ${fmt(pct(rt['stock']!, 50))} ms → ${fmt(pct(rt['pyexec']!, 50))} ms, against ${fmt(pct(rt['zmq']!, 50))} ms over raw ZMQ.`,
    '',
    '## pyexec executor vs the floor (same server, warm kernel)',
    '',
    '| path | n | p50 | p99 | min |',
    '| --- | ---: | ---: | ---: | ---: |',
    row('direct `requestExecute` (the floor)', rt['pyexec']!),
    row('`JupyterExecutor.execute` (lease, connect, one request: set-up, code, finish; files, release)', viaExecutor),
    '',
    'The executor sends one execute request where the floor sends one too, but its cell is not silent and the kernel',
    'does more in it (set-up: mode check, limits, context, the confinement narrowed to the run folder; the code; finish:',
    'classification, results, figures, all returned over IOPub), on a fresh kernel (first executions in a fresh process',
    'are slower), then writes results.json, execution_metadata.json and kernel_outputs.json. The websocket comes warm',
    'from the pool (opened when the kernel was started, or ahead by a reaper pass in a process that did not start it),',
    'checked beside the request (one REST call); a process that leases a kernel it holds no websocket to opens one',
    '(about 20–40 ms here).',
    '',
    '## Lease latency, warm pool (2 idle kernels)',
    '',
    '| operation | n | p50 | p99 | min |',
    '| --- | ---: | ---: | ---: | ---: |',
    row('`KernelPool.acquire` (Redis claim script + record read)', lease),
    '',
    '## Replacing a kernel',
    '',
    '| operation | n | p50 | p99 | min |',
    '| --- | ---: | ---: | ---: | ---: |',
    row('reset: restart in place and wait for its first reply (after every lease, off the request path)', restart),
    row('replace: start a new kernel and wait for its first reply', replace),
    '',
    "Kernels are forks of the server's warm zygote (pyexec-zygote-provisioner): the start-up imports (numpy, pandas,",
    'matplotlib, pyepics, the guard; 1–2 s of CPU in a new Python) are paid once per server. A restart in place also',
    "waits for jupyter_client's 100 ms polls of the killed process; the pool replaces a used kernel with a new fork",
    "(the second row) after every lease, off the request's path: a pool of `spares_per_mode` kernels per server serves",
    'about `spares_per_mode / (run time + replacement time)` requests a second per mode.',
    '',
  );
} finally {
  for (const s of servers) await s.stop();
  redis.disconnect();
  await redisServer.stop();
}
const text = lines.join('\n');
writeFileSync(path.join(import.meta.dirname, 'results', 'kernel.md'), `${text}\n`);
process.stdout.write(`${text}\n`);
