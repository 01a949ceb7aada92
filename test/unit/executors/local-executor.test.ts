/**
 * The local executor with a real Python subprocess (the project's .venv): result capture and
 * serialisation, outcome classification by structure, timeouts that kill the whole process group.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { prepareRun } from '../../../src/executors/execution-folder.js';
import type { ExecutionOutcome } from '../../../src/executors/executor.js';
import { LocalExecutor } from '../../../src/executors/local-executor.js';

const root = mkdtempSync(path.join(tmpdir(), 'pyexec-local-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

async function runCode(
  code: string,
  opts: {
    mode?: 'read_only' | 'write_access';
    timeoutMs?: number;
    context?: Record<string, unknown>;
    signal?: AbortSignal;
  } = {},
) {
  const folder = path.join(root, `run-${++n}`);
  await prepareRun(folder, code, opts.context ?? null);
  const executor = new LocalExecutor({ maxOutputBytes: 10_000 });
  const outcome = await executor.execute(
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
    },
    opts.signal ?? new AbortController().signal,
  );
  return { folder, outcome };
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
