/**
 * The local executor with real Python processes (the project's .venv), forked from its warm zygote
 * and, for comparison, started the ordinary way: result capture and serialisation, outcome
 * classification by structure, timeouts that kill the whole process group, fresh state per run, a
 * zygote that dies.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExecutorUnavailableError } from '../../../src/errors.js';
import type { ExecutionOutcome, ExecutionTask } from '../../../src/executors/executor.js';
import { LocalExecutor } from '../../../src/executors/local-executor.js';
import { prepareRun } from '../../../src/store/execution-folder.js';

const root = mkdtempSync(path.join(tmpdir(), 'pyexec-local-'));
/** One executor for the file, as a worker process has: its zygote forks every run. */
const shared = new LocalExecutor({ maxOutputBytes: 10_000 });
after(async () => {
  await shared.close();
  rmSync(root, { recursive: true, force: true });
});
let n = 0;

interface RunOptions {
  mode?: 'read_only' | 'write_access';
  timeoutMs?: number;
  context?: Record<string, unknown>;
  signal?: AbortSignal;
  executor?: LocalExecutor;
  onOutput?: ExecutionTask['onOutput'];
}

/** Prepares a run's folder and starts the run; `outcome` settles when it ends. */
async function startRun(code: string, opts: RunOptions = {}) {
  const folder = path.join(root, `run-${++n}`);
  await prepareRun(folder, code, opts.context ?? null);
  const executor = opts.executor ?? shared;
  const outcome = executor.execute(
    {
      requestId: `r${n}`,
      code,
      mode: opts.mode ?? 'read_only',
      executionFolder: folder,
      timeoutMs: opts.timeoutMs ?? 30_000,
      request: {
        user_query: 'q',
        task_objective: 't',
        execution_folder_name: 'x',
        expected_results: {},
        capability_prompts: [],
        capability_context_data: null,
      },
      ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
    },
    opts.signal ?? new AbortController().signal,
  );
  return { folder, outcome };
}

async function runCode(code: string, opts: RunOptions = {}) {
  const { folder, outcome } = await startRun(code, opts);
  return { folder, outcome: await outcome };
}

const ok = (o: ExecutionOutcome) => {
  if (o.status !== 'ok') assert.fail(`expected ok, got ${JSON.stringify(o)}`);
  return o;
};

describe('local executor', () => {
  it('returns results with numpy, pandas and datetime values as JSON', async () => {
    const { outcome } = await runCode(
      "import numpy as np, pandas as pd, datetime\nresults = {'arr': np.arange(3), 'f': np.float32(1.5), 'df': pd.DataFrame({'a': [1, 2]}), 't': datetime.datetime(2024, 5, 1, 12, 0), 's': {3}, 'c': 1+2j}",
    );
    assert.deepEqual(ok(outcome).results, {
      arr: [0, 1, 2],
      f: 1.5,
      df: { a: [1, 2] },
      t: '2024-05-01T12:00:00',
      s: { _type: 'set', items: [3] },
      c: { _type: 'complex', real: 1, imag: 2 },
    });
  });

  it('gives the code its context and captures stdout', async () => {
    const { outcome } = await runCode("print('beam', context['beam'])\nresults = {'twice': context.beam * 2}", {
      context: { beam: 21 },
    });
    const o = ok(outcome);
    assert.deepEqual(o.results, { twice: 42 });
    assert.match(o.stdout, /beam 21/);
  });

  it('classifies a raised exception as a runtime code error with the traceback', async () => {
    const { outcome } = await runCode("def f():\n    raise KeyError('missing_pv')\nf()\nresults = {}");
    assert.equal(outcome.status, 'code_error');
    if (outcome.status !== 'code_error') return;
    assert.equal(outcome.errorType, 'runtime');
    assert.equal(outcome.errorName, 'KeyError');
    assert.match(outcome.traceback, /line 2, in f/);
  });

  it('treats a missing results variable as a code error', async () => {
    const { outcome } = await runCode('x = 1\nprint(x)');
    assert.equal(outcome.status === 'code_error' && outcome.errorType, 'missing_results');
  });

  it('treats results that cannot become JSON as a code error', async () => {
    const { outcome } = await runCode("results = {'inf': float('inf'), 'obj': object()}");
    // Non-JSON values are converted (marked), never silently dropped.
    const o = ok(outcome);
    assert.deepEqual((o.results as Record<string, unknown>)['inf'], { _type: 'float', value: 'inf' });
    assert.equal(
      (o.results as Record<string, { _serialization_note?: string }>)['obj']?._serialization_note,
      'converted_to_string',
    );
  });

  it('bounds stdout with a truncation marker', async () => {
    const { outcome } = await runCode("print('x' * 50000)\nresults = {}");
    const o = ok(outcome);
    assert.ok(o.stdout.length < 11_000);
    assert.match(o.stdout, /output truncated: \d+ more characters/);
  });

  it('kills the whole process group on timeout, children included', async () => {
    const marker = path.join(root, 'orphan-marker');
    const code = `import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "import time; time.sleep(3); open('${marker}', 'w').write('alive')"])\nwhile True:\n    pass`;
    const { outcome } = await runCode(code, { mode: 'write_access', timeoutMs: 1500 });
    assert.equal(outcome.status === 'code_error' && outcome.errorType, 'timeout');
    await sleep(4000);
    assert.equal(existsSync(marker), false, 'the grandchild survived the timeout');
  });

  it('refuses EPICS writes and process spawning in read-only mode, even when the code catches the refusal', async () => {
    const { outcome } = await runCode(
      "from epics import caput as w\ntry:\n    w('X:Y', 1)\nexcept Exception:\n    pass\nresults = {'done': True}",
    );
    assert.equal(outcome.status, 'refused');
    assert.equal(outcome.status === 'refused' && outcome.errorType, 'write_blocked');
    const spawn = await runCode("import os\nos.system('true')\nresults = {}");
    assert.equal(spawn.outcome.status, 'refused');
  });

  it('reports a process that ends itself as a code error', async () => {
    const { outcome } = await runCode('import os\nos._exit(3)');
    assert.equal(outcome.status === 'code_error' && outcome.errorType, 'process_exited');
  });

  it('saves matplotlib figures to figures/', async () => {
    const { outcome } = await runCode(
      'import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.figure()\nplt.plot([3])\nresults = {}',
    );
    const o = ok(outcome);
    assert.deepEqual(
      o.figures.map((f) => path.basename(f)),
      ['figure_01.png', 'figure_02.png'],
    );
  });
});

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
};
const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^\S+ \S+ Z/.test(stat(pid));
const stat = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, 'x');
  } catch {
    return '';
  }
};
const parentOf = async (executor?: LocalExecutor) =>
  (
    ok((await runCode("import os\nresults = {'ppid': os.getppid()}", executor ? { executor } : {})).outcome)
      .results as {
      ppid: number;
    }
  ).ppid;

describe("the local executor's zygote", () => {
  it('forks every run from one warm zygote, with nothing left from the run before and fresh random seeds', async () => {
    const first = await runCode(
      "import os, json, random, numpy\nnumpy.leaked = 1\njson.leaked = 1\nos.environ['LEAKED'] = '1'\nglobal_leak = 1\nresults = {'ppid': os.getppid(), 'r': random.random(), 'n': float(numpy.random.rand())}",
    );
    const second = await runCode(
      "import os, json, random, numpy\nresults = {'ppid': os.getppid(), 'r': random.random(), 'n': float(numpy.random.rand()), 'leaks': [hasattr(numpy, 'leaked'), hasattr(json, 'leaked'), 'LEAKED' in os.environ, 'global_leak' in globals()]}",
    );
    const a = ok(first.outcome).results as { ppid: number; r: number; n: number };
    const b = ok(second.outcome).results as { ppid: number; r: number; n: number; leaks: boolean[] };
    assert.equal(a.ppid, b.ppid);
    assert.match(cmdline(a.ppid), /pyexec_runtime\.run_server/);
    assert.deepEqual(b.leaks, [false, false, false, false]);
    assert.notEqual(a.r, b.r);
    assert.notEqual(a.n, b.n);
  });

  it("gives each run a private temporary folder of its own and removes it when the run ends, a killed run's too", async () => {
    const code =
      "import os, tempfile\nopen('tmp', 'w').write(tempfile.gettempdir())\nopen(os.path.join(tempfile.gettempdir(), 'f'), 'w').write('x')\n";
    const first = await runCode(`${code}results = {'tmp': tempfile.gettempdir()}`);
    const second = await runCode(
      `${code}results = {'tmp': tempfile.gettempdir(), 'entries': os.listdir(tempfile.gettempdir())}`,
    );
    const a = ok(first.outcome).results as { tmp: string };
    const b = ok(second.outcome).results as { tmp: string; entries: string[] };
    assert.notEqual(a.tmp, b.tmp);
    assert.deepEqual(b.entries, ['f'], 'the second run saw only its own file');
    assert.equal(existsSync(a.tmp), false, `${a.tmp} is left behind`);
    assert.equal(existsSync(b.tmp), false, `${b.tmp} is left behind`);
    const killed = await runCode(`${code}while True:\n    pass`, { timeoutMs: 1500 });
    assert.equal(killed.outcome.status === 'code_error' && killed.outcome.errorType, 'timeout');
    const tmp = readFileSync(path.join(killed.folder, 'tmp'), 'utf8');
    assert.ok(tmp.length > 0);
    assert.equal(existsSync(tmp), false, `${tmp} of the killed run is left behind`);
  });

  it("starts every run from the zygote's state, not the last run's: the guard and the refusals", async () => {
    const refused = await runCode(
      "from epics import caput\ntry:\n    caput('X:Y', 1)\nexcept Exception:\n    pass\nresults = {}",
    );
    assert.equal(refused.outcome.status, 'refused');
    // A refusal is reported even when the code catches it: a refusal left over from the run
    // before would refuse this one too.
    ok((await runCode("results = {'x': 1}")).outcome);
    // The read-only guard replaced subprocess.run in the run before; a write run gets the real one.
    const write = await runCode(
      "import subprocess\nfrom pyexec_runtime import guard\nresults = {'mode': guard.installed_mode(), 'run': subprocess.run.__name__}",
      { mode: 'write_access' },
    );
    assert.deepEqual(ok(write.outcome).results, { mode: 'write_access', run: 'run' });
  });

  it('ends a short run whose reply and exit reach a busy event loop together (they are read in one chunk)', async () => {
    await parentOf(); // the zygote is warm
    const { outcome: running } = await startRun("print('hi')\nresults = {'x': 1}");
    // The spawn request is written once the pending promise callbacks ran; then this process
    // is busy while the run starts, prints and ends.
    await new Promise((resolve) => setImmediate(resolve));
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      running,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the run never ended')), 20_000);
      }),
    ]).finally(() => clearTimeout(timer));
    assert.deepEqual(ok(outcome).results, { x: 1 });
    assert.equal(ok(outcome).stdout, 'hi\n');
  });

  it('sends the output as the code prints it', async () => {
    const chunks: Array<{ text: string; at: number }> = [];
    const started = Date.now();
    const { outcome } = await runCode(
      "import sys, time\nprint('first')\nsys.stdout.flush()\ntime.sleep(1)\nprint('second')\nresults = {}",
      { onOutput: (c) => c.kind === 'stdout' && chunks.push({ text: c.text, at: Date.now() - started }) },
    );
    const done = Date.now() - started;
    ok(outcome);
    assert.equal(chunks.map((c) => c.text).join(''), 'first\nsecond\n');
    assert.ok(chunks[0]!.at < done - 500, `the first line came ${chunks[0]!.at} ms in, the run took ${done} ms`);
  });

  it('starts a new zygote when its zygote was killed, and the next run succeeds', async () => {
    const before = await parentOf();
    process.kill(before, 'SIGKILL');
    for (let i = 0; i < 50 && alive(before); i++) await sleep(20);
    const after = await parentOf();
    assert.notEqual(after, before);
    assert.match(cmdline(after), /pyexec_runtime\.run_server/);
  });

  it('ends a run whose zygote dies under it as an infrastructure failure that may have run, its process group killed', async () => {
    const zygote = await parentOf();
    const running = runCode("import os, time\nopen('pid', 'w').write(str(os.getpid()))\ntime.sleep(60)\nresults = {}");
    const pidFile = path.join(root, `run-${n}`, 'pid');
    for (let i = 0; i < 500 && !existsSync(pidFile); i++) await sleep(20);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    process.kill(zygote, 'SIGKILL');
    await assert.rejects(running, (err: Error) => {
      assert.ok(err instanceof ExecutorUnavailableError, String(err));
      assert.equal(err.started, true);
      return true;
    });
    for (let i = 0; i < 50 && alive(pid); i++) await sleep(20);
    assert.equal(alive(pid), false, 'the run is still running');
  });

  it('runs the same without a zygote (a new Python per run)', async () => {
    const executor = new LocalExecutor({ maxOutputBytes: 10_000, forkServer: false });
    const { outcome } = await runCode(
      "import os, numpy\nprint('hello')\nresults = {'ppid': os.getppid(), 'x': int(numpy.arange(3).sum())}",
      { executor },
    );
    const r = ok(outcome);
    assert.equal((r.results as { x: number }).x, 3);
    assert.equal((r.results as { ppid: number }).ppid, process.pid);
    assert.equal(r.stdout, 'hello\n');
  });
});
