/**
 * pyexec against Osprey 0.11.5 (issue 14, item 6, last bullet), side by side in one run:
 * the same trivial read-only request (the same code, a mock generator that returns it, approval
 * off) through
 *
 * - Osprey 0.11.5's Python executor service (PyPI `osprey-framework==0.11.5`, its
 *   MockCodeGenerator), driven by bench/osprey_driver.py in a virtualenv of its own
 *   (.bench-venv/osprey; never the project's .venv): its `local` method, and its `container` method
 *   against a stock jupyter_server of that venv on loopback (no Docker engine here; the folder
 *   mount is the identity), unless --no-container;
 * - pyexec, local method (fork server);
 * - pyexec, container method (a warm kernel of the pool waiting), unless --no-container;
 *
 * interleaved round by round (the order rotates each round), after one discarded warm-up call each
 * (Osprey's container warm-up is its first call: it starts the kernel, and is reported apart).
 * Each figure is submit → final answer as the caller sees it: Osprey's `service.ainvoke` timed in
 * its driver (a long-lived process: its imports and graph compilation are not counted), pyexec's
 * `client.submit` → `client.wait` here.
 *
 * The virtualenv is created on first use (python3 -m venv; pip install osprey-framework==0.11.5,
 * and jupyter_server + ipykernel for its container method: a few minutes); --no-install forbids that. If Osprey cannot be installed or started, the bench
 * says why and exits 0 without touching bench/results/osprey-compare.md.
 *
 * Run: node --import tsx bench/osprey-compare.bench.ts [--rounds N] [--no-container] [--no-install]
 * Writes bench/results/osprey-compare.md.
 */
import { type ChildProcess, type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { createExecutors, type ExecutorSet } from '../src/executors/index.js';
import { freePort } from '../src/free-port.js';
import { silentLogger } from '../src/logger.js';
import { spawnOwned, stopGroup } from '../src/process-group.js';
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

/** Whether the venv can serve Osprey's container method (a stock jupyter_server, an ipykernel). */
function hasJupyter(): boolean {
  try {
    execFileSync(venvPython, ['-c', 'import jupyter_server, ipykernel'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why Osprey's container method is not measured, if it is not. */
let ospreyContainerSkipped: string | undefined;

function ensureOsprey(): void {
  ensureOspreyFramework();
  if (!CONTAINER || hasJupyter()) return;
  if (!INSTALL) {
    ospreyContainerSkipped = `${venv} has no jupyter_server/ipykernel and --no-install was given`;
    return;
  }
  try {
    execFileSync(venvPython, ['-m', 'pip', 'install', '--quiet', 'jupyter_server', 'ipykernel'], { stdio: 'inherit' });
  } catch (e) {
    ospreyContainerSkipped = `installing jupyter_server and ipykernel into ${venv} failed: ${(e as Error).message}`;
  }
}

function ensureOspreyFramework(): void {
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
  child_cpu_ms?: number;
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

  static async start(
    method: 'local' | 'container',
    env: Record<string, string> = {},
  ): Promise<{ driver: OspreyDriver; version: string }> {
    const workDir = mkdtempSync(path.join(os.tmpdir(), 'pyexec-osprey-bench-'));
    const child = spawn(venvPython, [driver, workDir, method], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
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

/**
 * A stock jupyter_server of the Osprey venv on loopback, as Osprey's Jupyter container runs one:
 * no token (Osprey's client sends none), its `python3` kernel is the venv's Python (Osprey
 * installed, as in Osprey's image).
 */
async function stockJupyter(): Promise<{ port: number; stop(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pyexec-osprey-jupyter-'));
  const port = await freePort();
  const args = [
    '-m',
    'jupyter_server',
    '--no-browser',
    '--ServerApp.ip=127.0.0.1',
    `--ServerApp.port=${port}`,
    '--ServerApp.port_retries=0',
    `--ServerApp.root_dir=${dir}`,
    '--IdentityProvider.token=',
    '--ServerApp.password=',
    '--ServerApp.disable_check_xsrf=True',
    '--ServerApp.terminals_enabled=False',
  ];
  if (process.getuid?.() === 0) args.push('--allow-root');
  const child: ChildProcess = spawnOwned(venvPython, args, {
    cwd: dir,
    env: { ...process.env, JUPYTER_RUNTIME_DIR: path.join(dir, 'runtime'), JUPYTER_DATA_DIR: path.join(dir, 'data') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const stop = async () => {
    await stopGroup(child, 8000);
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`the stock jupyter_server exited at start: ${stderr.slice(-2000)}`);
    }
    try {
      if ((await fetch(`http://127.0.0.1:${port}/api/status`, { signal: AbortSignal.timeout(2000) })).ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the stock jupyter_server did not answer in 180 s: ${stderr.slice(-2000)}`);
    }
    await sleep(200);
  }
  return { port, stop };
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
const loads: string[] = [];
type Side = 'ospreyLocal' | 'ospreyContainer' | 'pyexecLocal' | 'pyexecContainer';
const label: Record<Side, string> = {
  ospreyLocal: 'Osprey local',
  ospreyContainer: 'Osprey container',
  pyexecLocal: 'pyexec local',
  pyexecContainer: 'pyexec container',
};
const ospreyLocal = await OspreyDriver.start('local');
const version = ospreyLocal.version;
let jupyter: Awaited<ReturnType<typeof stockJupyter>> | undefined;
let ospreyContainer: OspreyDriver | undefined;
if (CONTAINER && !ospreyContainerSkipped) {
  try {
    jupyter = await stockJupyter();
    ospreyContainer = (
      await OspreyDriver.start('container', {
        OSPREY_JUPYTER_PORT: String(jupyter.port),
        OSPREY_KERNEL_NAME: 'python3',
      })
    ).driver;
  } catch (e) {
    ospreyContainerSkipped = (e as Error).message;
  }
}
const beds: { local: Awaited<ReturnType<typeof pyexecBed>>; container?: Awaited<ReturnType<typeof pyexecBed>> } = {
  local: await pyexecBed('local'),
};
if (CONTAINER) beds.container = await pyexecBed('container');

const sides: Side[] = [
  'ospreyLocal',
  ...(ospreyContainer ? (['ospreyContainer'] as const) : []),
  'pyexecLocal',
  ...(CONTAINER ? (['pyexecContainer'] as const) : []),
];
const ms: Record<Side, number[]> = { ospreyLocal: [], ospreyContainer: [], pyexecLocal: [], pyexecContainer: [] };
const warmUp: Partial<Record<Side, number>> = {};
const ospreyExecuteMs: Record<'ospreyLocal' | 'ospreyContainer', number[]> = { ospreyLocal: [], ospreyContainer: [] };
const ospreyResults: Partial<Record<Side, unknown>> = {};
const ospreyLocalChildCpuMs: number[] = [];
const failures: string[] = [];
let kernelReused: boolean | undefined;
const t0 = performance.now();

async function ospreyCall(side: 'ospreyLocal' | 'ospreyContainer', code: string): Promise<OspreyReply> {
  const d = side === 'ospreyLocal' ? ospreyLocal.driver : ospreyContainer!;
  const r = await d.run(code);
  if (!r.ok || r.results?.['x'] !== 2) throw new Error(`Osprey request failed: ${r.error ?? JSON.stringify(r)}`);
  return r;
}

async function call(side: Side): Promise<number> {
  if (side === 'ospreyLocal' || side === 'ospreyContainer') {
    const r = await ospreyCall(side, CODE);
    ospreyExecuteMs[side].push(r.execute_ms ?? Number.NaN);
    if (side === 'ospreyLocal') ospreyLocalChildCpuMs.push(r.child_cpu_ms ?? Number.NaN);
    ospreyResults[side] = r.results;
    return r.ms;
  }
  const b = side === 'pyexecLocal' ? beds.local : beds.container!;
  return pyexecOnce(b.bed, b.set);
}

try {
  // One discarded warm-up call each (first-call costs: Osprey's lazy imports and, for its
  // container method, the kernel's start; pyexec's fork server).
  for (const side of sides) warmUp[side] = await call(side);
  for (const k of Object.values(ospreyExecuteMs)) k.length = 0;
  ospreyLocalChildCpuMs.length = 0;
  loads.push(load());
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
      `round ${i + 1}/${ROUNDS}: ${sides.map((s) => `${label[s]} ${f1(ms[s].at(-1) ?? Number.NaN)} ms`).join(', ')}; load ${load()}\n`,
    );
  }
  // Does a request see the state a previous one left in Osprey's kernel?
  if (ospreyContainer) {
    await ospreyCall('ospreyContainer', 'bench_probe_left_by_a_previous_request = 1\nresults = {"x": 2}');
    const r = await ospreyCall(
      'ospreyContainer',
      'results = {"x": 2, "seen": "bench_probe_left_by_a_previous_request" in globals()}',
    );
    kernelReused = r.results?.['seen'] === true;
  }
} finally {
  await ospreyLocal.driver.close();
  await ospreyContainer?.close();
  await jupyter?.stop();
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
const x = (a: number, b: number) => `${(a / b).toFixed(a / b >= 10 ? 0 : 1)}x`;
const measured = (s: Side) => ms[s].length > 0;
out('# Osprey comparison benchmark');
out(
  `<!-- headline: | Osprey comparison (bench/osprey-compare.bench.ts) | the same trivial read-only request, interleaved (${ROUNDS} rounds): Osprey ${version} local ${f1(p50('ospreyLocal') / 1000)} s p50 vs pyexec local ${f1(p50('pyexecLocal'))} ms (${x(p50('ospreyLocal'), p50('pyexecLocal'))})${measured('ospreyContainer') && measured('pyexecContainer') ? `; Osprey container ${f1(p50('ospreyContainer'))} ms (one kernel reused by every request) vs pyexec container ${f1(p50('pyexecContainer'))} ms (a fresh kernel each) (${x(p50('ospreyContainer'), p50('pyexecContainer'))})` : ''} | -->`,
);
out();
out(
  `Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. Times in ms.`,
);
out(`Osprey: osprey-framework ${version} from PyPI in its own virtualenv (${path.relative(root, venv)}).`);
out();
out(
  `The same request on each side: the code \`${CODE}\` from a mock generator, approval off, read-only; every answer checked (x = 2). ${ROUNDS} rounds, interleaved (the order rotates each round), after one discarded warm-up call each; ${f1(wallS)} s in all.`,
);
out();
out('| path | n | p50 | p90 | p99 | min | max |');
out('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
out(row(`Osprey ${version}, local method (its MockCodeGenerator; \`service.ainvoke\`)`, ms.ospreyLocal));
out(row('… of which its executor (`LocalCodeExecutor.execute_code`: a new Python)', ospreyExecuteMs.ospreyLocal));
out(row('… CPU (user + system) of that new Python', ospreyLocalChildCpuMs));
if (measured('ospreyContainer')) {
  out(row(`Osprey ${version}, container method, stock jupyter_server, its kernel running`, ms.ospreyContainer));
  out(row('… of which its executor (`ContainerCodeExecutor.execute_code`)', ospreyExecuteMs.ospreyContainer));
}
out(row('pyexec, local method (submit → terminal event)', ms.pyexecLocal));
if (measured('pyexecContainer'))
  out(row('pyexec, container method, a warm kernel waiting (submit → terminal event)', ms.pyexecContainer));
out();
out(
  `First calls (the discarded warm-ups, n = 1): ${sides.map((s) => `${label[s]} ${f1(warmUp[s] ?? Number.NaN)}`).join(', ')}.`,
);
out();
const ratios = [
  `Osprey local / pyexec local: p50 **${x(p50('ospreyLocal'), p50('pyexecLocal'))}**, p99 ${x(p99('ospreyLocal'), p99('pyexecLocal'))}`,
];
if (measured('pyexecContainer'))
  ratios.push(
    `Osprey local / pyexec container: p50 **${x(p50('ospreyLocal'), p50('pyexecContainer'))}**, p99 ${x(p99('ospreyLocal'), p99('pyexecContainer'))}`,
  );
if (measured('ospreyContainer') && measured('pyexecContainer'))
  ratios.push(
    `Osprey container / pyexec container: p50 **${x(p50('ospreyContainer'), p50('pyexecContainer'))}**, p99 ${x(p99('ospreyContainer'), p99('pyexecContainer'))}`,
  );
for (const r of ratios) out(`- ${r}`);
out();
out(
  `With ${ROUNDS} rounds the p99 is the largest sample. Osprey local's time is mostly CPU (its new Python's imports), so it stretches with the machine's load more than pyexec's figures do; its CPU row is the load-independent part.`,
);
if (kernelReused !== undefined) {
  out();
  out(
    kernelReused
      ? "Osprey's container method does not start a kernel per request: every request's `POST /api/sessions` names the same path (`/home/jovyan/work`), so jupyter_server hands back the same session and kernel, never restarted; a variable set by one request was visible to the next (probed after the rounds). Its steady-state figure is a reused, warm kernel with whatever earlier requests left in it; pyexec's is a fresh forked kernel per request."
      : "Osprey's container method: a variable set by one request was not visible to the next (probed after the rounds).",
  );
}
if (ospreyContainerSkipped) {
  out();
  out(`Osprey's container method was not measured: ${ospreyContainerSkipped}`);
}
out();
out(
  `Machine load (other engineers share these 2 cores; the ratios, interleaved in one run, are what counts): \`${uptimeBefore}\` before, \`${uptimeAfter}\` after; 1/5/15-minute load averages after the warm-ups and after each round: ${loads.join(' · ')}.`,
);
if (failures.length) {
  out();
  out(`Failed calls (not in the figures): ${failures.length}`);
  for (const f of failures) out(`- ${f}`);
}
out();
out(
  `What Osprey's local answer holds (its local executor adds its own keys to the user's dict): \`${JSON.stringify(ospreyResults.ospreyLocal ?? {})}\`.`,
);
out();
out('How each side runs it:');
out();
out(
  "- Osprey: bench/osprey_driver.py builds `PythonExecutorService()` once per method, in a long-lived process (its imports and graph compilation are not counted), its config from a `config.yml` it writes (approval disabled, control system `mock`); each request is one `service.ainvoke(PythonExecutionRequest(...))` through Osprey's LangGraph (generator → analyzer → executor; no approval needed), its in-memory checkpointer, its static analysis, its execution folder and notebooks. Its MockCodeGenerator is put in place the way Osprey's own integration tests do (patching `generation.node.create_code_generator`): at 0.11.5 the factory's `MockCodeGenerator(model_config=...)` ignores `generators.mock.behavior`.",
);
out(
  "- Osprey local: the wrapped code is written to a temp file and run by a new `python` (the venv's), whose wrapper first calls `initialize_registry()`, importing Osprey and its LangChain/LangGraph/MCP stack, then numpy/pandas/matplotlib, before the user's line runs: nearly all of its time.",
);
out(
  "- Osprey container: a stock jupyter_server of the same venv on loopback, without a token (Osprey's client sends none), its `python3` kernel in that venv (Osprey installed, as in Osprey's image). No Docker engine here, so the folder mount Osprey's deployment makes (host `executed_scripts` → `/home/jovyan/work/executed_scripts`) is the identity: the driver maps the path to itself. Osprey's client (requests + websocket-client) opens a session, sends the wrapped code, and reads `results.json` from the host folder.",
);
out(
  "- pyexec: one fleet per method on one private Redis (the test harness's), the mock generator returning the same code, approval disabled; the local method forks the fork server's warm Python; the container method leases a warm forked kernel from the pool of 2 (whole again before each request), and every request gets a fresh kernel.",
);
const text = lines.join('\n');
writeFileSync(path.join(import.meta.dirname, 'results', 'osprey-compare.md'), `${text}\n`);
process.stdout.write(`${text}\n`);
process.exit(0);
