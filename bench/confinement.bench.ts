/**
 * What confinement costs (issue 13), side by side in one run, interleaved:
 *
 * 1. kernel start to its first kernel_info reply, on a Jupyter server whose kernels confine
 *    themselves (`landlock`) and on one whose kernels do not (`deployment`);
 * 2. a trivial request through the local method (a fresh Python per request), both ways;
 * 3. `confine_process` alone, in a fresh Python (capabilities, seccomp, the Landlock ruleset).
 *
 * Run: node --import tsx bench/confinement.bench.ts [--iterations N]
 * Writes bench/results/confinement.md.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../src/config.js';
import { type SpawnedJupyterServer, spawnJupyterServer } from '../src/executors/jupyter-server.js';
import { JupyterServerClient } from '../src/executors/kernel-client.js';
import { LocalExecutor } from '../src/executors/local-executor.js';
import { kernelModes } from '../src/executors/pool-config.js';
import { pythonExecutable, scrubbedEnv } from '../src/python-env.js';
import { PythonExecutionRequest } from '../src/request.js';

const iterArg = process.argv.indexOf('--iterations');
const N = iterArg > 0 ? Number(process.argv[iterArg + 1]) : 20;
const METHODS = ['landlock', 'deployment'] as const;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const fmt = (x: number) => x.toFixed(1);
const row = (name: string, xs: number[]) =>
  `| ${name} | ${xs.length} | ${fmt(pct(xs, 50))} | ${fmt(pct(xs, 90))} | ${fmt(Math.min(...xs))} |`;
const ratio = (a: number[], b: number[]) => (pct(a, 50) / pct(b, 50)).toFixed(3);

const modes = kernelModes(parseConfig({}));
const root = mkdtempSync(path.join(os.tmpdir(), 'pyexec-bench-confine-'));
const servers: Partial<Record<(typeof METHODS)[number], SpawnedJupyterServer>> = {};
const start: Record<string, number[]> = { landlock: [], deployment: [] };
const local: Record<string, number[]> = { landlock: [], deployment: [] };
try {
  for (const m of METHODS) {
    servers[m] = await spawnJupyterServer({ modes, serve: ['read_only'], confinement: m, executionRoot: root });
  }
  // 1. Kernel start, interleaved (the order alternates so neither method always goes first).
  for (let i = 0; i < N + 2; i++) {
    for (const m of i % 2 ? [...METHODS].reverse() : METHODS) {
      const client = new JupyterServerClient(servers[m]!, { startTimeoutMs: 120_000 });
      const t = performance.now();
      const id = await client.startKernel(modes.read_only.kernel_name);
      const kernel = await client.connect(id, 120_000);
      const ms = performance.now() - t;
      kernel.dispose();
      await client.shutdownKernel(id);
      if (i >= 2) start[m]!.push(ms);
    }
  }
  // 2. The local method: a trivial request in a fresh Python each time.
  const request = PythonExecutionRequest.parse({ user_query: 'q', task_objective: 'o', execution_folder_name: 'b' });
  for (let i = 0; i < N + 2; i++) {
    for (const m of i % 2 ? [...METHODS].reverse() : METHODS) {
      const folder = path.join(root, `local-${randomUUID().slice(0, 8)}`);
      mkdirSync(folder);
      writeFileSync(path.join(folder, 'code.py'), 'results = {"x": 1}\n');
      const t = performance.now();
      const out = await new LocalExecutor({ confinement: m }).execute(
        { requestId: randomUUID(), code: '', mode: 'read_only', executionFolder: folder, timeoutMs: 60_000, request },
        new AbortController().signal,
      );
      if (out.status !== 'ok') throw new Error(`local run failed: ${JSON.stringify(out)}`);
      if (i >= 2) local[m]!.push(performance.now() - t);
    }
  }
} finally {
  for (const s of Object.values(servers)) await s?.stop();
  rmSync(root, { recursive: true, force: true });
}

// 3. confine_process alone, in fresh Pythons.
const alone = JSON.parse(
  execFileSync(
    pythonExecutable(),
    [
      '-c',
      [
        'import json, subprocess, sys',
        'code = "import time; t = time.perf_counter(); from pyexec_runtime import confine; confine.confine_process(\'read_only\', write_dirs=[]); print((time.perf_counter() - t) * 1000)"',
        `print(json.dumps([float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout) for _ in range(${Math.max(N, 20)})]))`,
      ].join('\n'),
    ],
    { env: scrubbedEnv(), encoding: 'utf8' },
  ),
) as number[];

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const abi = JSON.parse(
  execFileSync(pythonExecutable(), ['-m', 'pyexec_runtime.confine', 'probe'], { env: scrubbedEnv(), encoding: 'utf8' }),
) as { landlock_abi: number };
const lines = [
  '# Confinement benchmark',
  `<!-- headline: | confinement (bench/confinement.bench.ts) | kernel start ${ratio(start['landlock']!, start['deployment']!)}x unconfined (p50 ${fmt(pct(start['landlock']!, 50))} vs ${fmt(pct(start['deployment']!, 50))} ms); local run ${ratio(local['landlock']!, local['deployment']!)}x; import + confine_process ${pct(alone, 50).toFixed(2)} ms p50 | -->`,
  '',
  `Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; Linux ${os.release()}, Landlock ABI ${abi.landlock_abi}; Node ${process.version}; ${new Date().toISOString().slice(0, 10)}.`,
  'Both methods in one run, interleaved (alternating which goes first). Times in ms.',
  '',
  '| what | n | p50 | p90 | min |',
  '| --- | ---: | ---: | ---: | ---: |',
  row('kernel start to first reply, confined (`landlock`)', start['landlock']!),
  row('kernel start to first reply, not confined (`deployment`)', start['deployment']!),
  row('local method, trivial request, confined', local['landlock']!),
  row('local method, trivial request, not confined', local['deployment']!),
  row(
    'importing confine.py (ctypes) and `confine_process` (capabilities, seccomp, Landlock ruleset), fresh Python',
    alone,
  ),
  '',
  `Ratios of p50s: kernel start ${ratio(start['landlock']!, start['deployment']!)}x, local run ${ratio(local['landlock']!, local['deployment']!)}x.`,
  'The confinement itself is a few system calls and one `open(O_PATH)` per allowed path; the kernel start is',
  'dominated by its imports either way. A confined kernel imports the warm stack after confining (Landlock binds the',
  'calling thread only, so it must come before numpy starts its threads), which is where any difference shows.',
  '',
];
const text = lines.join('\n');
writeFileSync(path.join(import.meta.dirname, 'results', 'confinement.md'), `${text}\n`);
process.stdout.write(`${text}\n`);
