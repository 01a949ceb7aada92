/**
 * The `container` method end to end: a real Jupyter server spawned by pyexec, kernels from
 * pyexec's kernelspecs, leases in a real Redis, and a real soft IOC (with its read-only endpoint).
 * Covers what unit tests cannot: reads and writes over Channel Access from a kernel, the run-time
 * read-only guard and the IOC's access security, channel limits, timeouts with interrupt,
 * cancellation, and that no state survives from one request to the next.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RequestInputError } from '../../src/errors.js';
import type { ExecutionOutcome } from '../../src/executors/executor.js';
import { createExecutors, type ExecutorSet } from '../../src/executors/index.js';
import { silentLogger } from '../../src/logger.js';
import { keyPrefix } from '../../src/redis/connection.js';
import { redis, stopRedis, testConfig } from '../support/harness.js';
import { iocModes, kernelTask, type SoftIocWithReadOnly, startIocWithReadOnlyPort } from '../support/kernel-support.js';

let ioc: SoftIocWithReadOnly;
let set: ExecutorSet;
let limitsDir: string;
/** The execution root: runs' folders are made beneath it (a confined kernel may write nowhere else). */
let root: string;

before(async () => {
  ioc = await startIocWithReadOnlyPort();
  limitsDir = mkdtempSync(path.join(tmpdir(), 'pyexec-limits-'));
  writeFileSync(
    path.join(limitsDir, 'limits.json'),
    JSON.stringify({
      _comment: 'test limits',
      'DEVICE:PV:SETPOINT': { min_value: 0, max_value: 50, max_step: 20 },
      'MAG:QF1:CURRENT:SP': { writable: false },
    }),
  );
  const server = await redis();
  const config = testConfig({
    execution: {
      execution_method: 'container',
      modes: iocModes(ioc),
      container: { pool: { spares_per_mode: 2, lease_wait_ms: 60_000, interrupt_grace_ms: 2000 } },
    },
    control_system: { limits_checking: { enabled: true, database_path: 'limits.json', allow_unlisted_channels: true } },
    pyexec: { max_output_bytes: 5000, config_dir: limitsDir },
  });
  root = config.pyexec.execution_root;
  set = await createExecutors(config, {
    redisUrl: server.url,
    prefix: keyPrefix(config.pyexec.redis.prefix),
    logger: silentLogger(),
  });
});
after(async () => {
  await set?.close();
  await ioc?.stop();
  await stopRedis();
  rmSync(limitsDir, { recursive: true, force: true });
});

function run(
  code: string,
  mode: 'read_only' | 'write_access' = 'read_only',
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
) {
  const executionFolder = mkdtempSync(path.join(root, 'run-'));
  mkdirSync(path.join(executionFolder, 'figures'));
  const task = kernelTask(code, mode, { timeoutMs: options.timeoutMs ?? 30_000, executionFolder });
  return Object.assign(set.executors.container!.execute(task, options.signal ?? new AbortController().signal), {
    folder: task.executionFolder,
  });
}

const resultsOf = (out: ExecutionOutcome) => {
  assert.equal(out.status, 'ok', JSON.stringify(out));
  return out.status === 'ok' ? (out.results as Record<string, unknown>) : {};
};

describe('container executor', () => {
  describe('reads', () => {
    it('returns the IOC value of a caget in results, with stdout', async () => {
      await ioc.caput('DEVICE:PV:SETPOINT', 21.5);
      const out = await run(
        "import epics\nresults = {'sp': epics.caget('DEVICE:PV:SETPOINT', timeout=5)}\nprint('read done')",
      );
      assert.deepEqual(resultsOf(out), { sp: 21.5 });
      assert.match(out.stdout, /read done/);
      assert.match(out.status === 'ok' ? (out.kernel ?? '') : '', /\//);
    });
  });

  describe('an approved write in a write_access kernel', () => {
    it('changes the PV, as a separate Channel Access client sees it', async () => {
      await ioc.caput('DEVICE:PV:SETPOINT', 10);
      const out = await run(
        "import epics\nok = epics.caput('DEVICE:PV:SETPOINT', 12.5, wait=True, timeout=5)\nresults = {'ok': ok}",
        'write_access',
      );
      assert.deepEqual(resultsOf(out), { ok: 1 });
      assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 12.5);
    });
  });

  describe('every write form in a read-only kernel', () => {
    const forms: Record<string, string> = {
      caput: "import epics\nepics.caput('DEVICE:PV:SETPOINT', 33, wait=True)",
      'caput alias': "from epics import caput as w\nw('DEVICE:PV:SETPOINT', 33, wait=True)",
      'caput through getattr': "import epics\ngetattr(epics, 'ca' + 'put')('DEVICE:PV:SETPOINT', 33, wait=True)",
      caput_many: "import epics\nepics.caput_many(['DEVICE:PV:SETPOINT'], [33], wait='all')",
      'PV.put': "import epics\np = epics.PV('DEVICE:PV:SETPOINT')\np.wait_for_connection(5)\np.put(33, wait=True)",
      'PV.value =': "import epics\np = epics.PV('DEVICE:PV:SETPOINT')\np.wait_for_connection(5)\np.value = 33",
      'ca.put':
        "import epics\nchid = epics.ca.create_channel('DEVICE:PV:SETPOINT', connect=True)\nepics.ca.put(chid, 33, wait=True)",
      'raw libca put':
        "import ctypes, epics\nchid = epics.ca.create_channel('DEVICE:PV:SETPOINT', connect=True)\nv = ctypes.c_double(33)\nepics.ca.libca.ca_array_put(6, 1, chid, ctypes.byref(v))",
      'Motor.move': 'from epics.motor import Motor\nMotor.__new__(Motor).move(33)',
      'caught and ignored':
        "import epics\ntry:\n    epics.caput('DEVICE:PV:SETPOINT', 33)\nexcept Exception:\n    pass\nresults = {'ok': True}",
      subprocess: "import subprocess\nsubprocess.run(['python3', '-c', 'print(1)'])",
      'os.system': "import os\nos.system('true')",
      ctypes: "import ctypes\nctypes.CDLL('libc.so.6')",
    };
    for (const [name, code] of Object.entries(forms)) {
      it(`refuses ${name}, and the PV is unchanged`, async () => {
        await ioc.caput('DEVICE:PV:SETPOINT', 10);
        const out = await run(code);
        assert.equal(out.status, 'refused', JSON.stringify(out));
        assert.equal(out.status === 'refused' && out.errorType, 'write_blocked');
        assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 10);
      });
    }

    it('refuses at the IOC a write that got past the in-process guard (read-only endpoint)', async () => {
      await ioc.caput('DEVICE:PV:SETPOINT', 10);
      // Dig the real libca out of the guard's closure: the guard is bypassed, the IOC is not.
      const code = [
        'import ctypes, epics',
        'real = [c.cell_contents for c in type(epics.ca.libca).__getattr__.__closure__ if not isinstance(c.cell_contents, dict)][0]',
        "chid = epics.ca.create_channel('DEVICE:PV:SETPOINT', connect=True)",
        'v = ctypes.c_double(33)',
        'ret = real.ca_array_put(6, 1, chid, ctypes.byref(v))',
        'real.ca_pend_io(ctypes.c_double(2.0))',
        "results = {'ret': ret, 'write_access': epics.ca.write_access(chid)}",
      ].join('\n');
      const r = resultsOf(await run(code));
      assert.notEqual(r['ret'], 1, 'ECA_NORMAL: the IOC accepted the write');
      assert.equal(Boolean(r['write_access']), false);
      assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 10);
    });
  });

  describe('channel limits', () => {
    it('refuses a write above max_value as a limits violation, with no write at the IOC', async () => {
      await ioc.caput('DEVICE:PV:SETPOINT', 10);
      const out = await run(
        "import epics\nepics.caput('DEVICE:PV:SETPOINT', 75, wait=True)\nresults = {}",
        'write_access',
      );
      assert.equal(out.status, 'refused', JSON.stringify(out));
      assert.equal(out.status === 'refused' && out.errorType, 'limits_violation');
      assert.match(out.status === 'refused' ? out.message : '', /above max_value 50/);
      assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 10);
    });

    it('refuses a step larger than max_step and a channel that is not writable', async () => {
      await ioc.caput('DEVICE:PV:SETPOINT', 10);
      const step = await run(
        "import epics\np = epics.PV('DEVICE:PV:SETPOINT')\np.wait_for_connection(5)\np.put(45, wait=True)\nresults = {}",
        'write_access',
      );
      assert.equal(step.status === 'refused' && step.errorType, 'limits_violation');
      const ro = await run(
        "import epics\nepics.caput('MAG:QF1:CURRENT:SP', 1.0, wait=True)\nresults = {}",
        'write_access',
      );
      assert.equal(ro.status === 'refused' && ro.errorType, 'limits_violation');
      assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 10);
      assert.equal(await ioc.caget('MAG:QF1:CURRENT:SP'), 0);
    });

    it('lets a write within the limits through', async () => {
      await ioc.caput('DEVICE:PV:SETPOINT', 10);
      const out = await run(
        "import epics\nresults = {'ok': epics.caput('DEVICE:PV:SETPOINT', 25, wait=True)}",
        'write_access',
      );
      assert.deepEqual(resultsOf(out), { ok: 1 });
      assert.equal(await ioc.caget('DEVICE:PV:SETPOINT'), 25);
    });
  });

  describe('code errors and outputs', () => {
    it('reports an exception as a code error with a plain-text traceback', async () => {
      const out = await run('x = 1\ny = x / 0');
      assert.equal(out.status, 'code_error');
      if (out.status !== 'code_error') return;
      assert.equal(out.errorType, 'runtime');
      assert.equal(out.errorName, 'ZeroDivisionError');
      assert.match(out.traceback, /ZeroDivisionError/);
      assert.ok(!out.traceback.includes(`${String.fromCharCode(27)}[`), 'ANSI colour codes in the traceback');
    });

    it('reports missing results as a code error', async () => {
      const out = await run("print('no results here')");
      assert.equal(out.status === 'code_error' && out.errorType, 'missing_results');
    });

    it('bounds stdout with a truncation marker, and saves figures and the cell outputs', async () => {
      const p = run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nprint('x' * 20000)\nresults = {'n': 1}");
      const out = await p;
      assert.equal(out.status, 'ok');
      if (out.status !== 'ok') return;
      assert.ok(out.stdout.length < 6000, `stdout is ${out.stdout.length} characters`);
      assert.match(out.stdout, /output truncated: \d+ more characters/);
      assert.equal(out.figures.length, 1);
      assert.match(out.figures[0]!, /figures\/figure_01\.png$/);
      assert.ok(existsSync(out.figures[0]!));
      assert.deepEqual(JSON.parse(readFileSync(path.join(p.folder, 'results.json'), 'utf8')), { n: 1 });
      const cell = JSON.parse(readFileSync(path.join(p.folder, 'kernel_outputs.json'), 'utf8'));
      assert.equal(cell.outputs[0].output_type, 'stream');
    });
    it('keeps rich outputs by MIME type, up to a bound', async () => {
      const p = run(
        "from IPython.display import HTML, display\nfor i in range(250):\n    display(HTML(f'<b>{i}</b>'))\nresults = {}",
      );
      const out = await p;
      assert.equal(out.status, 'ok');
      const cell = JSON.parse(readFileSync(path.join(p.folder, 'kernel_outputs.json'), 'utf8'));
      assert.equal(cell.outputs.length, 200);
      assert.equal(cell.outputs[0].data['text/html'], '<b>0</b>');
      assert.match(out.stderr, /more than 200 rich outputs/);
    });
  });

  describe('request data the kernel cannot decode', () => {
    it("is the request's own error (RequestInputError), not the kernel's, and the code does not run", async () => {
      let deep: unknown = 1;
      for (let i = 0; i < 1500; i++) deep = { d: deep };
      const task = kernelTask("open('ran.txt', 'w').write('ran')\nresults = {}", 'read_only');
      const request = { ...task.request, capability_context_data: { deep } };
      const outcome = set.executors.container!.execute({ ...task, request }, new AbortController().signal);
      await assert.rejects(outcome, (err: unknown) => {
        assert.ok(err instanceof RequestInputError && /cannot be decoded/.test(err.message), String(err));
        return true;
      });
      assert.equal(existsSync(path.join(task.executionFolder, 'ran.txt')), false);
      // The kernel is fine: the next request runs on the pool as usual.
      assert.deepEqual(resultsOf(await run("results = {'after': 1}")), { after: 1 });
    });
  });

  describe('isolation', () => {
    it('every request gets a fresh kernel: no variable, module attribute, environment change, numpy patch, thread or open file of the one before; random seeds differ', async () => {
      const leave = [
        'import os, json, numpy, random, threading, time',
        'leaked_var = 41',
        'json.leaked_attr = 1',
        'os.environ["PYEXEC_LEAKED"] = "1"',
        'numpy.sum = lambda *a, **k: "patched"',
        'threading.Thread(target=lambda: time.sleep(600), name="leaked-thread", daemon=True).start()',
        'fd = os.open("leak.txt", os.O_CREAT | os.O_WRONLY)',
        'results = {"pid": os.getpid(), "random": random.random(), "np_random": float(numpy.random.rand())}',
      ].join('\n');
      const look = [
        'import os, json, numpy, random, threading',
        'links = [os.readlink(f"/proc/self/fd/{n}") for n in os.listdir("/proc/self/fd") if os.path.exists(f"/proc/self/fd/{n}")]',
        'results = {',
        '    "pid": os.getpid(),',
        '    "leaked_var": "leaked_var" in globals(),',
        '    "attr": hasattr(json, "leaked_attr"),',
        '    "env": "PYEXEC_LEAKED" in os.environ,',
        '    "numpy_sum": str(numpy.sum([1, 2])),',
        '    "threads": sorted(t.name for t in threading.enumerate() if t.name == "leaked-thread"),',
        '    "leak_open": any(l.endswith("leak.txt") for l in links),',
        '    "random": random.random(),',
        '    "np_random": float(numpy.random.rand()),',
        '}',
      ].join('\n');
      const seen: Array<Record<string, unknown>> = [];
      const kernels = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const a = await run(leave);
        const b = await run(look);
        const ra = resultsOf(a);
        const rb = resultsOf(b);
        assert.deepEqual(
          { ...rb, pid: undefined, random: undefined, np_random: undefined },
          {
            pid: undefined,
            random: undefined,
            np_random: undefined,
            leaked_var: false,
            attr: false,
            env: false,
            numpy_sum: '3',
            threads: [],
            leak_open: false,
          },
        );
        assert.notEqual(ra['pid'], rb['pid'], 'the second request ran in the same process');
        seen.push(ra, rb);
        for (const o of [a, b]) if (o.status === 'ok' && o.kernel) kernels.add(o.kernel);
      }
      assert.equal(kernels.size, seen.length, 'a kernel served two requests');
      assert.equal(new Set(seen.map((r) => r['random'])).size, seen.length, 'random.random() repeated across kernels');
      assert.equal(new Set(seen.map((r) => r['np_random'])).size, seen.length, 'numpy.random repeated across kernels');
    });
  });

  describe('timeouts and cancellation', () => {
    it('times out an infinite loop, interrupts the kernel, and the pool serves the next request', async () => {
      const out = await run('while True:\n    pass', 'read_only', { timeoutMs: 1500 });
      assert.equal(out.status, 'code_error');
      assert.equal(out.status === 'code_error' && out.errorType, 'timeout');
      const next = await run("results = {'after': True}");
      assert.deepEqual(resultsOf(next), { after: true });
      const stats = await set.pool!.stats();
      assert.equal(stats.read_only.total, 2);
    });

    it('interrupts the kernel when the producer cancels', async () => {
      const ac = new AbortController();
      const pending = run('import time\ntime.sleep(60)\nresults = {}', 'read_only', { signal: ac.signal });
      setTimeout(() => ac.abort(new Error('cancelled by the producer')), 1000);
      await assert.rejects(pending, /cancelled by the producer/);
      const next = await run("results = {'after': True}");
      assert.deepEqual(resultsOf(next), { after: true });
    });
  });
});
