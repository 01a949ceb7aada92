/**
 * Fresh kernels (issue 14), side by side in one run:
 *
 * 1. replacing a kernel: a fork of the server's warm zygote vs a restart in place vs a new kernel
 *    started the ordinary way (a new Python), each to its first kernel_info reply, interleaved;
 * 2. pipeline latency of a trivial read-only request (mock generator, approval off) with a warm
 *    kernel waiting, against the floor (a direct `requestExecute` on a warm kernel of the same
 *    server), interleaved; the per-stage breakdown; then back to back with the default pool;
 * 3. sustained throughput: 300 trivial requests submitted at once, 4 kernels, container and local
 *    methods; CPU of the fleet's process and of everything else (Python: servers, zygotes, kernels).
 *
 * Run: node --import tsx bench/fresh-kernels.bench.ts [--rounds N] [--burst B]
 * Writes bench/results/fresh-kernels.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createExecutors, type ExecutorSet } from '../src/executors/index.js';
import { type SpawnedJupyterServer, spawnJupyterServer } from '../src/executors/jupyter-server.js';
import { JupyterServerClient } from '../src/executors/kernel-client.js';
import { kernelModes } from '../src/executors/pool-config.js';
import { silentLogger } from '../src/logger.js';
import { keyPrefix } from '../src/redis/connection.js';
import { sampleRequest, stopRedis, type TestBed, testBed, testConfig } from '../test/support/harness.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('--rounds', 20);
const BURST = arg('--burst', 300);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const f1 = (x: number) => x.toFixed(1);
const row = (name: string, xs: number[]) =>
  `| ${name} | ${xs.length} | ${f1(pct(xs, 50))} | ${f1(pct(xs, 90))} | ${f1(pct(xs, 99))} | ${f1(Math.min(...xs))} |`;

/** Jiffies of the whole machine (user + nice + system), from /proc/stat. */
const machineCpuMs = () => {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq] = v.map(Number);
  return ((user! + nice! + system! + irq! + softirq!) * 1000) / 100;
};
const nodeCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const lines: string[] = [];
const out = (s = '') => {
  lines.push(s);
  process.stderr.write(`${s}\n`);
};

// ---- 1. replacing a kernel ---------------------------------------------------------------------
const modes = kernelModes(testConfig({}));
const servers: SpawnedJupyterServer[] = [];
const replacement: Record<string, number[]> = { fork: [], restartFork: [], ordinary: [], restartOrdinary: [] };
try {
  const forked = await spawnJupyterServer({ modes, serve: ['read_only'] });
  const ordinary = await spawnJupyterServer({ modes, serve: ['read_only'], forkKernels: false });
  servers.push(forked, ordinary);
  const clients = {
    fork: new JupyterServerClient(forked, { startTimeoutMs: 120_000 }),
    ordinary: new JupyterServerClient(ordinary, { startTimeoutMs: 120_000 }),
  };
  const name = modes.read_only.kernel_name;
  const time = async (f: () => Promise<void>) => {
    const t = performance.now();
    await f();
    return performance.now() - t;
  };
  // Warm: the zygote is started by the first launch.
  for (const c of Object.values(clients)) {
    const id = await c.startKernel(name);
    (await c.connect(id, 120_000)).dispose();
    await c.shutdownKernel(id);
  }
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of i % 2 ? (['ordinary', 'fork'] as const) : (['fork', 'ordinary'] as const)) {
      const c = clients[kind];
      let id = '';
      const start = await time(async () => {
        id = await c.startKernel(name);
        (await c.connect(id, 120_000)).dispose();
      });
      const restart = await time(async () => {
        await c.restartKernel(id);
        (await c.connect(id, 120_000)).dispose();
      });
      await c.shutdownKernel(id);
      replacement[kind]!.push(start);
      replacement[kind === 'fork' ? 'restartFork' : 'restartOrdinary']!.push(restart);
    }
  }
} finally {
  for (const s of servers) await s.stop();
}
out('# Fresh kernels benchmark');
out(
  `<!-- headline: | fresh kernels (bench/fresh-kernels.bench.ts) | a fresh kernel in ${f1(pct(replacement['fork']!, 50))} ms p50 (fork of a warm zygote) vs ${f1(pct(replacement['ordinary']!, 50))} ms (a new Python): ${(pct(replacement['ordinary']!, 50) / pct(replacement['fork']!, 50)).toFixed(1)}x; THROUGHPUT_HEADLINE | -->`,
);
out();
out(
  `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; ${new Date().toISOString().slice(0, 10)}. Times in ms.`,
);
out();
out('## Replacing a kernel (to its first kernel_info reply, through the Jupyter server; interleaved)');
out();
out('| how | n | p50 | p90 | p99 | min |');
out('| --- | ---: | ---: | ---: | ---: | ---: |');
out(row('new kernel: fork of the warm zygote (pyexec-zygote-provisioner)', replacement['fork']!));
out(row('restart in place, forked kernel', replacement['restartFork']!));
out(row('new kernel: ordinary launcher (a new Python)', replacement['ordinary']!));
out(row('restart in place, ordinary launcher', replacement['restartOrdinary']!));
out();
out('The pool replaces a used kernel with a new fork (the first row), off the request path; a restart in place also');
out("waits for jupyter_client's 100 ms polls of the killed process.");

// ---- 2 and 3: the pipeline ----------------------------------------------------------------------
interface Timing {
  stage: string;
  enqueued_at: number;
  started_at: number;
  finished_at: number;
}

async function pipeline(method: 'container' | 'local', kernels: number) {
  const bed: TestBed = await testBed({
    execution: {
      execution_method: method,
      generators: { mock: { code: "results = {'x': 1}" } },
      container: { pool: { spares_per_mode: kernels, spawn: { modes: ['read_only'] }, lease_wait_ms: 600_000 } },
    },
    pyexec: { concurrency: { generation: 8, analysis: 8, approval: 4, execution: kernels, result: 8 } },
  });
  let set: ExecutorSet | undefined;
  if (method === 'container') {
    set = await createExecutors(bed.config, {
      redisUrl: bed.redisUrl,
      prefix: keyPrefix(bed.config.pyexec.redis.prefix),
      logger: silentLogger(),
    });
  }
  await bed.startFleet(set ? { executors: set.executors } : {});
  return { bed, set };
}

async function whole(set: ExecutorSet | undefined, kernels: number) {
  if (!set?.pool) return;
  for (let i = 0; i < 6000; i++) {
    const s = (await set.pool.stats()).read_only;
    if (s.idle >= kernels) return;
    await sleep(5);
  }
}

const latency: Record<string, number[]> = { floor: [], warm: [], backToBack: [] };
const stageMs: Record<string, number[]> = {};
const thru: Record<string, { rps: number; nodeCpu: number; otherCpu: number; seconds: number; ok: number }> = {};
{
  const { bed, set } = await pipeline('container', 2);
  try {
    // The floor: a warm kernel of the same server, outside the pool.
    const server = set!.spawned[0]!;
    const client = new JupyterServerClient(server, { startTimeoutMs: 120_000 });
    const floorId = await client.startKernel(modes.read_only.kernel_name);
    const floor = await client.connect(floorId, 120_000);
    const one = async () => {
      const t = performance.now();
      const { requestId } = await bed.client.submit(sampleRequest());
      const r = await bed.client.wait(requestId, { timeoutMs: 120_000 });
      const ms = performance.now() - t;
      if (r.kind !== 'finished' || r.response.status !== 'succeeded') throw new Error(JSON.stringify(r).slice(0, 500));
      return { ms, timings: (r.response as unknown as { timings?: Timing[] }).timings ?? [] };
    };
    for (let i = 0; i < 5; i++) {
      await whole(set, 2);
      await one();
    }
    for (let i = 0; i < ROUNDS * 5; i++) {
      // Silent: a pyexec kernel refuses a non-silent cell that no successful set-up announced (its
      // gate), and the pool's replacement of the last request's kernel is done first (CPU).
      await whole(set, 2);
      const t = performance.now();
      await floor.requestExecute({
        code: 'x = 1',
        silent: true,
        allow_stdin: false,
        stop_on_error: true,
        store_history: false,
      }).done;
      latency['floor']!.push(performance.now() - t);
      await whole(set, 2);
      const r = await one();
      latency['warm']!.push(r.ms);
      for (const t of r.timings) {
        stageMs[`${t.stage} queue wait`] ??= [];
        stageMs[`${t.stage} queue wait`]!.push(t.started_at - t.enqueued_at);
        stageMs[`${t.stage} work`] ??= [];
        stageMs[`${t.stage} work`]!.push(t.finished_at - t.started_at);
      }
    }
    for (let i = 0; i < ROUNDS; i++) latency['backToBack']!.push((await one()).ms);
    floor.dispose();
    await client.shutdownKernel(floorId);
  } finally {
    await bed.close();
    await set?.close();
  }
}
out();
out('## Pipeline latency, trivial read-only request (mock generator, approval off)');
out();
out('| path | n | p50 | p90 | p99 | min |');
out('| --- | ---: | ---: | ---: | ---: | ---: |');
out(row('floor: direct `requestExecute` (silent) on a warm kernel of the same server', latency['floor']!));
out(row('pyexec pipeline, a warm kernel waiting (submit → terminal event)', latency['warm']!));
out(row('pyexec pipeline, back to back, default pool of 2', latency['backToBack']!));
out();
out(
  `Overhead over the floor, p50: ${f1(pct(latency['warm']!, 50) - pct(latency['floor']!, 50))} ms (a warm kernel waiting); back to back p50 is ${(pct(latency['backToBack']!, 50) / pct(latency['warm']!, 50)).toFixed(2)}x the warm figure.`,
);
out();
out('Per stage (warm kernel waiting), from the envelope timings:');
out();
out('| stage | n | p50 | p90 | p99 | min |');
out('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [k, v] of Object.entries(stageMs)) out(row(k, v));

for (const method of ['container', 'local'] as const) {
  const { bed, set } = await pipeline(method, 4);
  try {
    await whole(set, 4);
    const cpu0 = machineCpuMs();
    const node0 = nodeCpuMs();
    const t0 = performance.now();
    const ids = await Promise.all(
      Array.from({ length: BURST }, (_, i) => bed.client.submit(sampleRequest({ thread_id: `burst-${method}-${i}` }))),
    );
    const results = await Promise.all(ids.map(({ requestId }) => bed.client.wait(requestId, { timeoutMs: 900_000 })));
    const seconds = (performance.now() - t0) / 1000;
    const nodeCpu = nodeCpuMs() - node0;
    const totalCpu = machineCpuMs() - cpu0;
    const ok = results.filter((r) => r.kind === 'finished' && r.response.status === 'succeeded').length;
    thru[method] = {
      rps: BURST / seconds,
      nodeCpu: nodeCpu / BURST,
      otherCpu: (totalCpu - nodeCpu) / BURST,
      seconds,
      ok,
    };
  } finally {
    await bed.close();
    await set?.close();
  }
}
await stopRedis();
out();
out(`## Sustained throughput: ${BURST} trivial requests submitted at once, 4 kernels (or 4 local runs at a time)`);
out();
out(
  '| method | succeeded | wall time (s) | requests/s | fleet (Node) CPU per request (ms) | everything else per request (ms) |',
);
out('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [m, t] of Object.entries(thru))
  out(
    `| ${m} | ${t.ok}/${BURST} | ${t.seconds.toFixed(1)} | ${t.rps.toFixed(2)} | ${t.nodeCpu.toFixed(1)} | ${t.otherCpu.toFixed(1)} |`,
  );
out();
out(
  '"Everything else" is the machine\'s CPU minus this process\'s: Redis, the Jupyter servers, zygotes and kernels (or the local runs).',
);
const text = lines
  .join('\n')
  .replace(
    'THROUGHPUT_HEADLINE',
    `${thru['container']?.rps.toFixed(1)} requests/s sustained (container, 4 kernels, 2 cores), ${thru['local']?.rps.toFixed(1)} (local)`,
  );
writeFileSync(path.join(import.meta.dirname, 'results', 'fresh-kernels.md'), `${text}\n`);
process.stdout.write(`${text}\n`);
