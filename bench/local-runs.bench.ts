/**
 * The local method's sustained throughput (issue 14), before/after side by side in one run: a
 * burst of trivial read-only requests (mock generator, approval off) through the whole pipeline,
 * 4 local runs at a time, with this tree's executor and with another tree's (`--before DIR`: a
 * checkout of an earlier commit with node_modules and .venv beside it), alternating, each round in
 * the other order. CPU by process: the fleet (this Node process), redis-server, the analysis
 * stage's Python helper, the fork server and the runs it forked (its reaped children), the
 * kernel's own threads, and the rest of the machine (other users of it included: a shared
 * machine's load is reported with the figures).
 *
 * Run: node --import tsx bench/local-runs.bench.ts [--before DIR [--before-note TEXT]] [--rounds N] [--burst B]
 * Writes bench/results/local-runs.md.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createExecutors } from '../src/executors/index.js';
import { silentLogger } from '../src/logger.js';
import { keyPrefix } from '../src/redis/connection.js';
import { sampleRequest, stopRedis, testBed } from '../test/support/harness.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const ROUNDS = Number(arg('--rounds') ?? 3);
const BURST = Number(arg('--burst') ?? 300);
const BEFORE = arg('--before');
const BEFORE_NOTE = arg('--before-note');
const RUNS_AT_ONCE = 4;

const TICK_MS = 10; // USER_HZ 100
/** [own CPU, reaped children's CPU] of a process, in ms. */
const procCpu = (pid: number): [number, number] => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return [(Number(f[11]) + Number(f[12])) * TICK_MS, (Number(f[13]) + Number(f[14])) * TICK_MS];
  } catch {
    return [0, 0];
  }
};
/** This process's children whose command line matches. */
const children = (match: RegExp) =>
  readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return ppid === process.pid && match.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
      } catch {
        return false;
      }
    });
/** CPU of the kernel's own threads (kworkers, jbd2, ksoftirqd: file system and network work). */
const kernelThreadsCpuMs = () =>
  readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .reduce((sum, e) => {
      try {
        const f = readFileSync(`/proc/${e}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return f[1] === '2' ? sum + (Number(f[11]) + Number(f[12])) * TICK_MS : sum;
      } catch {
        return sum;
      }
    }, 0);
const machineCpuMs = () => {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq] = v.map(Number);
  return (user! + nice! + system! + irq! + softirq!) * TICK_MS;
};
const nodeCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

interface Burst {
  rps: number;
  ok: number;
  node: number;
  redis: number;
  analysis: number;
  server: number;
  runs: number;
  kernel: number;
  rest: number;
}

type Factory = typeof createExecutors;

async function burst(factory: Factory, label: string): Promise<Burst> {
  const bed = await testBed({
    execution: { execution_method: 'local', generators: { mock: { code: "results = {'x': 1}" } } },
    pyexec: { concurrency: { generation: 8, analysis: 8, approval: 4, execution: RUNS_AT_ONCE, result: 8 } },
  });
  const set = await factory(bed.config, {
    redisUrl: bed.redisUrl,
    prefix: keyPrefix(bed.config.pyexec.redis.prefix),
    logger: silentLogger(),
  });
  await bed.startFleet({ executors: set.executors });
  try {
    // Warm: the fork server starts with the first run.
    const warm = await bed.client.submit(sampleRequest({ thread_id: `warm-${label}` }));
    await bed.client.wait(warm.requestId, { timeoutMs: 120_000 });
    const [redisPid] = children(/redis-server/);
    const servers = children(/pyexec_runtime\.(run_server|zygote --role runner)/);
    if (redisPid === undefined || servers.length !== 1) throw new Error(`redis ${redisPid}, fork servers ${servers}`);
    const server = servers[0]!;
    const helpers = children(/pyexec_runtime\.analysis\.server/);
    const helperCpu = () => helpers.map(procCpu).reduce((a, [own, reaped]) => a + own + reaped, 0);
    const a0 = helperCpu();
    const r0 = procCpu(redisPid);
    const s0 = procCpu(server);
    const m0 = machineCpuMs();
    const k0 = kernelThreadsCpuMs();
    const n0 = nodeCpuMs();
    const t0 = performance.now();
    const ids = await Promise.all(
      Array.from({ length: BURST }, (_, i) => bed.client.submit(sampleRequest({ thread_id: `${label}-${i}` }))),
    );
    // A request that never ends counts as not succeeded (and its wait as wall time).
    const results = await Promise.all(
      ids.map(({ requestId }) => bed.client.wait(requestId, { timeoutMs: 120_000 }).catch(() => null)),
    );
    const seconds = (performance.now() - t0) / 1000;
    const node = nodeCpuMs() - n0;
    const machine = machineCpuMs() - m0;
    const kernel = kernelThreadsCpuMs() - k0;
    const analysis = helperCpu() - a0;
    const r1 = procCpu(redisPid);
    const s1 = procCpu(server);
    const redis = r1[0] - r0[0];
    const serverSelf = s1[0] - s0[0];
    const runs = s1[1] - s0[1];
    return {
      rps: BURST / seconds,
      ok: results.filter((r) => r?.kind === 'finished' && r.response.status === 'succeeded').length,
      node: node / BURST,
      redis: redis / BURST,
      analysis: analysis / BURST,
      server: serverSelf / BURST,
      runs: runs / BURST,
      kernel: kernel / BURST,
      rest: (machine - node - redis - analysis - serverSelf - runs - kernel) / BURST,
    };
  } finally {
    await bed.close();
    await set.close();
  }
}

const variants: Array<{ name: string; factory: Factory }> = [];
if (BEFORE) {
  const before = (await import(path.resolve(BEFORE, 'src/executors/index.ts'))) as { createExecutors: Factory };
  variants.push({ name: `before (${path.basename(path.resolve(BEFORE))})`, factory: before.createExecutors });
}
variants.push({ name: 'this tree', factory: createExecutors });

const loadBefore = load();
const figures = new Map<string, Burst[]>(variants.map((v) => [v.name, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 ? [...variants].reverse() : variants;
  for (const v of order) {
    const b = await burst(v.factory, `r${round}-v${variants.indexOf(v)}`);
    figures.get(v.name)!.push(b);
    process.stderr.write(`round ${round} ${v.name}: ${JSON.stringify(b)} (load ${load()})\n`);
  }
}
const loadAfter = load();
await stopRedis();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f1 = (x: number) => x.toFixed(1);
const rps = (name: string) => median(figures.get(name)!.map((b) => b.rps));
const cpu = (name: string) => median(figures.get(name)!.map((b) => b.node + b.redis + b.analysis + b.server + b.runs));
const [first, last] = [variants[0]!.name, variants.at(-1)!.name];
const headline =
  variants.length > 1
    ? `${rps(last).toFixed(1)} requests/s sustained (local, 4 runs at a time, 2 cores) vs ${rps(first).toFixed(1)} ${first}; the pipeline's CPU per request ${f1(cpu(last))} ms vs ${f1(cpu(first))} ms`
    : `${rps(last).toFixed(1)} requests/s sustained (local, 4 runs at a time, 2 cores); the pipeline's CPU per request ${f1(cpu(last))} ms`;
const lines = [
  '# Local method throughput benchmark',
  `<!-- headline: | local method throughput (bench/local-runs.bench.ts) | ${headline} | -->`,
  '',
  `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; ${new Date().toISOString().slice(0, 10)}. Load average (1, 5, 15 min) ${loadBefore} at the start, ${loadAfter} at the end.`,
  '',
  `${BURST} trivial read-only requests submitted at once through the whole pipeline (mock generator, approval off), ${RUNS_AT_ONCE} local runs at a time; ${ROUNDS} rounds, the variants alternating (each round in the other order); medians over the rounds. CPU per request in ms, by process.`,
  '',
  ...(BEFORE_NOTE ? [`"Before": ${BEFORE_NOTE}`, ''] : []),
  '| variant | succeeded | requests/s | fleet (Node) | redis-server | analysis helper (Python) | fork server | runs (forked children) | kernel threads | rest of the machine |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
];
for (const [name, bs] of figures) {
  const m = (k: keyof Burst) => median(bs.map((b) => b[k]));
  lines.push(
    `| ${name} | ${bs.map((b) => b.ok).join(', ')} of ${BURST} | ${m('rps').toFixed(2)} | ${f1(m('node'))} | ${f1(m('redis'))} | ${f1(m('analysis'))} | ${f1(m('server'))} | ${f1(m('runs'))} | ${f1(m('kernel'))} | ${f1(m('rest'))} |`,
  );
}
lines.push(
  '',
  '"Kernel threads": kworkers, jbd2, ksoftirqd (file system and loopback network work, for these processes and others). "Rest of the machine": /proc/stat minus all of the above: interrupts and other users of the machine (other work on a shared machine shows here); a negative figure under 1 ms is rounding (CPU in 10 ms ticks; a run\'s CPU is added to the fork server\'s when it is reaped).',
);
const text = `${lines.join('\n')}\n`;
writeFileSync(path.join(import.meta.dirname, 'results', 'local-runs.md'), text);
process.stdout.write(text);
