/**
 * pyexec against Osprey 0.11.5 (issue 14, item 6, last bullet), side by side in one run:
 * the same trivial read-only request (the same code, a mock generator that returns it, approval
 * off) through
 *
 * - Osprey 0.11.5's Python executor service (PyPI `osprey-framework==0.11.5`, its
 *   MockCodeGenerator, its `local` execution method), driven by bench/osprey_driver.py in a
 *   virtualenv of its own (.bench-venv/osprey; never the project's .venv);
 * - pyexec, local method (fork server);
 * - pyexec, container method (a warm kernel of the pool waiting), unless --no-container;
 *
 * interleaved round by round (the order rotates each round), after one discarded warm-up call each.
 * Each figure is submit → final answer as the caller sees it: Osprey's `service.ainvoke` timed in
 * its driver (a long-lived process: its imports and graph compilation are not counted), pyexec's
 * `client.submit` → `client.wait` here.
 *
 * The virtualenv is created on first use (python3 -m venv; pip install osprey-framework==0.11.5,
 * a few minutes); --no-install forbids that. If Osprey cannot be installed or started, the bench
 * says why and exits 0 without touching bench/results/osprey-compare.md.
 *
 * Run: node --import tsx bench/osprey-compare.bench.ts [--rounds N] [--no-container] [--no-install]
 * Writes bench/results/osprey-compare.md.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { createExecutors, type ExecutorSet } from '../src/executors/index.js';
import { silentLogger } from '../src/logger.js';
import { keyPrefix } from '../src/redis/connection.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../test/support/harness.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('--rounds', 10);
const CONTAINER = !process.argv.includes('--no-container');
const INSTALL = !process.argv.includes('--no-install');
const OSPREY_VERSION = '0.11.5';
/** The request's code, on both sides. */
const CODE = 'results = {"x": 1 + 1}';

const root = path.resolve(import.meta.dirname, '..');
const venv = path.join(root, '.bench-venv', 'osprey');
const venvPython = path.join(venv, 'bin', 'python');
const driver = path.join(import.meta.dirname, 'osprey_driver.py');

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const f1 = (x: number) => x.toFixed(1);
const row = (name: string, xs: number[]) =>
  `| ${name} | ${xs.length} | ${f1(pct(xs, 50))} | ${f1(pct(xs, 90))} | ${f1(pct(xs, 99))} | ${f1(Math.min(...xs))} | ${f1(Math.max(...xs))} |`;
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');

function skip(why: string): never {
  process.stderr.write(`osprey-compare: SKIPPED, Osprey ${OSPREY_VERSION} is not available: ${why}\n`);
  process.exit(0);
}

/** The installed osprey-framework version in the bench venv, or undefined. */
function installedVersion(): string | undefined {
  if (!existsSync(venvPython)) return undefined;
  try {
    return execFileSync(venvPython, ['-c', 'import importlib.metadata as m; print(m.version("osprey-framework"))'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

function ensureOsprey(): void {
  if (installedVersion() === OSPREY_VERSION) return;
  if (!INSTALL) skip(`${venv} has no osprey-framework ${OSPREY_VERSION} and --no-install was given`);
  const python = process.env['PYEXEC_BENCH_PYTHON'] ?? 'python3';
  process.stderr.write(
    `osprey-compare: creating ${venv} (${python} -m venv; pip install osprey-framework==${OSPREY_VERSION})\n`,
  );
  try {
    if (!existsSync(venvPython)) execFileSync(python, ['-m', 'venv', venv], { stdio: 'inherit' });
    execFileSync(venvPython, ['-m', 'pip', 'install', '--quiet', `osprey-framework==${OSPREY_VERSION}`], {
      stdio: 'inherit',
    });
  } catch (e) {
    skip(`installing it into ${venv} failed: ${(e as Error).message}`);
  }
  const v = installedVersion();
  if (v !== OSPREY_VERSION) skip(`after pip install, ${venv} reports osprey-framework ${v ?? 'missing'}`);
}

interface OspreyReply {
  ok: boolean;
  ms: number;
  execute_ms?: number;
  results?: Record<string, unknown>;
  error?: string;
}

/** bench/osprey_driver.py in the Osprey venv: one request a line. */
class OspreyDriver {
  private readonly lines: AsyncIterator<string>;
  private stderrTail = '';

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly workDir: string,
  ) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    child.stderr.on('data', (b: Buffer) => {
      this.stderrTail = (this.stderrTail + b.toString()).slice(-4000);
    });
  }

  static async start(method: 'local' | 'container'): Promise<{ driver: OspreyDriver; version: string }> {
    const workDir = mkdtempSync(path.join(os.tmpdir(), 'pyexec-osprey-bench-'));
    const child = spawn(venvPython, [driver, workDir, method], { stdio: ['pipe', 'pipe', 'pipe'] });
    const d = new OspreyDriver(child, workDir);
    const first = await d.next(600_000);
    if (first['ready'] !== true) {
      await d.close();
      skip(`its service did not start: ${String(first['error'] ?? JSON.stringify(first))}\n${d.stderrTail}`);
    }
    return { driver: d, version: String(first['version']) };
  }

  private async next(timeoutMs: number): Promise<Record<string, unknown>> {
    const timer = sleep(timeoutMs).then(() => 'timeout' as const);
    const r = await Promise.race([this.lines.next(), timer]);
    if (r === 'timeout') throw new Error(`Osprey driver: no answer in ${timeoutMs} ms\n${this.stderrTail}`);
    if (r.done) throw new Error(`Osprey driver exited (code ${this.child.exitCode})\n${this.stderrTail}`);
    return JSON.parse(r.value) as Record<string, unknown>;
  }

  async run(code: string): Promise<OspreyReply> {
    this.child.stdin.write(`${JSON.stringify({ code, ...sampleRequest() })}\n`);
    return (await this.next(600_000)) as unknown as OspreyReply;
  }

  async close(): Promise<void> {
    this.child.stdin.end();
    const exited = new Promise((r) => this.child.once('exit', r));
    if (this.child.exitCode === null) await Promise.race([exited, sleep(10_000)]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

async function pyexecBed(method: 'local' | 'container'): Promise<{ bed: TestBed; set?: ExecutorSet }> {
  const bed = await testBed({
    execution: {
      execution_method: method,
      generators: { mock: { code: CODE } },
      container: { pool: { spares_per_mode: 2, spawn: { modes: ['read_only'] }, lease_wait_ms: 600_000 } },
    },
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
  return set ? { bed, set } : { bed };
}

/** Until the pool has `n` idle kernels again (the replacement of the last lease is off the request path). */
async function poolWhole(set: ExecutorSet | undefined, n: number) {
  if (!set?.pool) return;
  for (let i = 0; i < 12_000; i++) {
    if ((await set.pool.stats()).read_only.idle >= n) return;
    await sleep(5);
  }
}

async function pyexecOnce(bed: TestBed, set?: ExecutorSet): Promise<number> {
  await poolWhole(set, 2);
  const t = performance.now();
  const { requestId } = await bed.client.submit(sampleRequest());
  const r = await bed.client.wait(requestId, { timeoutMs: 600_000 });
  const ms = performance.now() - t;
  if (r.kind !== 'finished' || r.response.status !== 'succeeded' || (r.response.results as { x?: number })?.x !== 2)
    throw new Error(`pyexec request did not succeed with x = 2: ${JSON.stringify(r).slice(0, 800)}`);
  return ms;
}

// ---- run ----------------------------------------------------------------------------------------
ensureOsprey();
const uptimeBefore = execFileSync('uptime', { encoding: 'utf8' }).trim();
const loads: string[] = [load()];
const { driver: osprey, version } = await OspreyDriver.start('local');
const beds: { local: Awaited<ReturnType<typeof pyexecBed>>; container?: Awaited<ReturnType<typeof pyexecBed>> } = {
  local: await pyexecBed('local'),
};
if (CONTAINER) beds.container = await pyexecBed('container');

type Side = 'osprey' | 'pyexecLocal' | 'pyexecContainer';
const sides: Side[] = ['osprey', 'pyexecLocal', ...(CONTAINER ? (['pyexecContainer'] as const) : [])];
const ms: Record<Side, number[]> = { osprey: [], pyexecLocal: [], pyexecContainer: [] };
const ospreyExecuteMs: number[] = [];
const ospreyResults: Record<string, unknown>[] = [];
const failures: string[] = [];
const t0 = performance.now();

async function call(side: Side): Promise<number> {
  if (side === 'osprey') {
    const r = await osprey.run(CODE);
    if (!r.ok || r.results?.['x'] !== 2) throw new Error(`Osprey request failed: ${r.error ?? JSON.stringify(r)}`);
    ospreyExecuteMs.push(r.execute_ms ?? Number.NaN);
    ospreyResults.push(r.results);
    return r.ms;
  }
  const b = side === 'pyexecLocal' ? beds.local : beds.container!;
  return pyexecOnce(b.bed, b.set);
}

try {
  // One discarded warm-up call each (first-call costs: Osprey's lazy imports, pyexec's fork server).
  for (const side of sides) await call(side);
  ospreyExecuteMs.length = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const order = sides.map((_, j) => sides[(i + j) % sides.length]!);
    for (const side of order) {
      try {
        ms[side].push(await call(side));
      } catch (e) {
        failures.push(`round ${i + 1}, ${side}: ${(e as Error).message.slice(0, 400)}`);
      }
    }
    loads.push(load());
    process.stderr.write(
      `round ${i + 1}/${ROUNDS}: ${sides.map((s) => `${s} ${f1(ms[s].at(-1) ?? Number.NaN)} ms`).join(', ')}; load ${load()}\n`,
    );
  }
} finally {
  await osprey.close();
  await beds.local.bed.close();
  if (beds.container) {
    await beds.container.bed.close();
    await beds.container.set?.close();
  }
  await stopRedis();
}
const wallS = (performance.now() - t0) / 1000;
const uptimeAfter = execFileSync('uptime', { encoding: 'utf8' }).trim();

// ---- report -------------------------------------------------------------------------------------
const lines: string[] = [];
const out = (s = '') => lines.push(s);
const p50 = (s: Side) => pct(ms[s], 50);
const p99 = (s: Side) => pct(ms[s], 99);
const ratio = (a: number, b: number) => (a / b).toFixed(0);
out('# Osprey comparison benchmark');
out(
  `<!-- headline: | Osprey comparison (bench/osprey-compare.bench.ts) | the same trivial read-only request: Osprey ${version} local ${f1(p50('osprey') / 1000)} s p50 vs pyexec local ${f1(p50('pyexecLocal'))} ms (${ratio(p50('osprey'), p50('pyexecLocal'))}x)${CONTAINER ? ` and container ${f1(p50('pyexecContainer'))} ms (${ratio(p50('osprey'), p50('pyexecContainer'))}x)` : ''}; ${ROUNDS} interleaved rounds | -->`,
);
out();
out(
  `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Times in ms.`,
);
out(`Osprey: osprey-framework ${version} from PyPI in its own virtualenv (${path.relative(root, venv)}).`);
out();
out(
  `The same request on each side: the code \`${CODE}\` from a mock generator, approval off, read-only; each answer checked (x = 2). ${ROUNDS} rounds, interleaved (the order rotates each round), after one discarded warm-up call each; ${f1(wallS)} s in all.`,
);
out();
out('| path | n | p50 | p90 | p99 | min | max |');
out('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
out(row(`Osprey ${version}, local method (its MockCodeGenerator; \`service.ainvoke\`)`, ms.osprey));
out(row('  of which its executor (`LocalCodeExecutor.execute_code`)', ospreyExecuteMs));
out(row('pyexec, local method (submit → terminal event)', ms.pyexecLocal));
if (CONTAINER)
  out(row('pyexec, container method, a warm kernel waiting (submit → terminal event)', ms.pyexecContainer));
out();
out(
  `Osprey / pyexec, p50: **${ratio(p50('osprey'), p50('pyexecLocal'))}x** (local)${CONTAINER ? `, **${ratio(p50('osprey'), p50('pyexecContainer'))}x** (pyexec container)` : ''}; p99: ${ratio(p99('osprey'), p99('pyexecLocal'))}x (local)${CONTAINER ? `, ${ratio(p99('osprey'), p99('pyexecContainer'))}x (container)` : ''}. With ${ROUNDS} rounds the p99 is the largest sample.`,
);
out();
out(
  `Machine load (other engineers share these 2 cores; the ratios, interleaved in one run, are what counts): \`${uptimeBefore}\` before, \`${uptimeAfter}\` after; 1/5/15-minute load averages after each round: ${loads.slice(1).join(' · ')}.`,
);
if (failures.length) {
  out();
  out(`Failed calls (not in the figures): ${failures.length}`);
  for (const f of failures) out(`- ${f}`);
}
out();
out(
  `What Osprey's answer holds (its local executor adds its own keys to the user's dict): \`${JSON.stringify(ospreyResults.at(-1) ?? {})}\`.`,
);
out();
out('How each side runs it:');
out();
out(
  "- Osprey: bench/osprey_driver.py builds `PythonExecutorService()` once (its config from a `config.yml` it writes: `execution_method: local`, approval disabled, control system `mock`), then each request is one `service.ainvoke(PythonExecutionRequest(...))` through Osprey's LangGraph (generator → analyzer → executor; approval not needed), its in-memory checkpointer, its static analysis, its execution folder and notebook. Its mock generator is put in place the way Osprey's own integration tests do (patching `generation.node.create_code_generator`): the factory's `MockCodeGenerator(model_config=...)` ignores `generators.mock.behavior`. Its local method writes the wrapped code to a temp file and runs it in a new `python` (the venv's), whose wrapper first calls `initialize_registry()`, importing Osprey and its LangChain/LangGraph/MCP stack before the user's line runs.",
);
out(
  "- pyexec: one fleet per method on one private Redis (the test harness's), the mock generator returning the same code, approval disabled; the local method forks the fork server's warm Python; the container method leases a warm forked kernel from the pool of 2, which is whole again before each request.",
);
const text = lines.join('\n');
writeFileSync(path.join(import.meta.dirname, 'results', 'osprey-compare.md'), `${text}\n`);
process.stdout.write(`${text}\n`);
process.exit(0);
