/**
 * `pyexec up` as a terminal, `timeout` or a service manager signals it: the whole process group
 * (Ctrl-C, `timeout`), or the up process alone, during start-up or once it runs. Its children (a
 * private redis-server, the soft IOC and its CA repeater, the Jupyter server and its kernels) run in
 * process groups of their own and are stopped by `up` in order; none is left running, whenever the
 * signal arrives. Only real processes show this: every descendant of `up` is followed through /proc.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectRoot } from '../../src/python-env.js';

const bin = path.join(projectRoot, 'bin/pyexec.js');
const scratch = mkdtempSync(path.join(tmpdir(), 'pyexec-up-'));
const config = path.join(scratch, 'config.yml');
writeFileSync(
  config,
  JSON.stringify({
    execution: { code_generator: 'mock', execution_method: 'container', container: { pool: { spares_per_mode: 1 } } },
    approval: { global_mode: 'disabled' },
    pyexec: { metrics_port: 0, shutdown_grace_ms: 5000, execution_root: path.join(scratch, 'runs') },
  }),
);

let up: ChildProcess | undefined;
let seen = new Map<string, Proc>();
after(() => rmSync(scratch, { recursive: true, force: true }));
afterEach(async () => {
  // Whatever the test left: the up process group, and every descendant it saw.
  if (up?.pid && up.exitCode === null) process.kill(-up.pid, 'SIGKILL');
  for (const p of alive(seen)) process.kill(p.pid, 'SIGKILL');
  seen = new Map();
  up = undefined;
});

interface Proc {
  readonly pid: number;
  readonly ppid: number;
  /** Start time in clock ticks: a pid and its start time name one process, even if the pid is reused. */
  readonly start: string;
  readonly cmd: string;
}

function readProc(pid: number): Proc | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    return { pid, ppid: Number(fields[1]), start: fields[19]!, cmd };
  } catch {
    return null;
  }
}

/** Adds every current descendant of `root` to `into` (keyed by pid and start time). */
function collectDescendants(root: number, into: Map<string, Proc>): void {
  const all = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map((d) => readProc(Number(d)))
    .filter((p): p is Proc => p !== null);
  const family = new Set([root, ...[...into.values()].map((p) => p.pid)]);
  // A child read between its fork and its exec shows its parent's command line: read again.
  for (const p of all) if (p.cmd && into.has(`${p.pid}:${p.start}`)) into.set(`${p.pid}:${p.start}`, p);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (family.has(p.ppid) && !family.has(p.pid)) {
        family.add(p.pid);
        into.set(`${p.pid}:${p.start}`, p);
        grew = true;
      }
    }
  }
}

/** The processes of `procs` still running (same pid and start time, and not a zombie). */
function alive(procs: Map<string, Proc>): Proc[] {
  return [...procs.values()].filter((p) => {
    const now = readProc(p.pid);
    if (!now || now.start !== p.start) return false;
    const state = readFileSync(`/proc/${p.pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== 'Z';
  });
}

/** Starts `pyexec up` as the leader of a process group of its own (as a shell starts a job). */
function startUp(): { stdout: () => string; stderr: () => string; exit: Promise<number | string> } {
  const child = spawn('node', [bin, '--config', config, 'up'], {
    detached: true,
    env: {
      ...process.env,
      PYEXEC_LOG_LEVEL: 'info',
      PYEXEC_STATE_DIR: path.join(scratch, 'state'),
      PYEXEC_APPROVER_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  up = child;
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return { stdout: () => out, stderr: () => err, exit };
}

/** Follows up's descendants until `until` holds for them (or up exits); returns what was seen. */
async function follow(until: (procs: Proc[]) => boolean, timeoutMs = 90_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (!up?.pid || up.exitCode !== null) throw new Error('up exited before the moment to signal it');
    collectDescendants(up.pid, seen);
    if (until(alive(seen))) return;
    await sleep(25);
  }
  throw new Error(`timed out; seen: ${[...seen.values()].map((p) => p.cmd).join('\n')}`);
}

/** Keeps following descendants until up exits, then waits for every one seen to be gone. */
async function noneLeft(exit: Promise<number | string>): Promise<number | string> {
  let code: number | string | undefined;
  void exit.then((c) => (code = c));
  const end = Date.now() + 60_000;
  while (code === undefined && Date.now() < end) {
    if (up?.pid) collectDescendants(up.pid, seen);
    await sleep(25);
  }
  assert.notEqual(code, undefined, 'up did not exit within 60 s of the signal');
  // Stopping is up's job, not the kernel's: give stragglers a moment, no more.
  for (let i = 0; i < 40 && alive(seen).length > 0; i++) await sleep(100);
  assert.deepEqual(
    alive(seen).map((p) => p.cmd),
    [],
    'processes that up started are still running',
  );
  return code!;
}

const has = (procs: Proc[], what: RegExp) => procs.some((p) => what.test(p.cmd));
/** A kernel has started: one forked by a zygote (it keeps the zygote's command line), or one
 * started the ordinary way. */
const hasKernel = (procs: Proc[]) =>
  has(procs, /pyexec_runtime\.kernel /) ||
  procs.some(
    (p) => /pyexec_runtime\.zygote/.test(p.cmd) && procs.some((z) => z.pid === p.ppid && /zygote/.test(z.cmd)),
  );

describe('pyexec up under signals', () => {
  it('SIGTERM to the process group during start-up: everything started is stopped', async () => {
    const run = startUp();
    // Redis and the soft IOC are up; the Jupyter server is starting its kernels.
    await follow((procs) => has(procs, /redis-server/) && hasKernel(procs));
    process.kill(-up!.pid!, 'SIGTERM');
    const code = await noneLeft(run.exit);
    const all = [...seen.values()];
    assert.ok(has(all, /sim_ioc/), `the soft IOC had started: ${all.map((p) => p.cmd).join('\n')}`);
    assert.doesNotMatch(run.stdout(), /pyexec is up/);
    // up stopped them itself, in order, and exited by itself (not killed by the signal).
    assert.equal(code, 0, run.stderr());
    assert.match(run.stderr(), /draining/);
  });

  it('SIGTERM to the up process alone during start-up: everything started is stopped', async () => {
    const run = startUp();
    await follow((procs) => has(procs, /sim_ioc/));
    process.kill(up!.pid!, 'SIGTERM');
    await noneLeft(run.exit);
    assert.ok(has([...seen.values()], /redis-server/));
  });

  it('SIGTERM to the process group once up runs: the fleet drains with Redis there, then all stop', async () => {
    const run = startUp();
    const end = Date.now() + 120_000;
    while (!run.stdout().includes('pyexec is up') && Date.now() < end) {
      if (up?.pid) collectDescendants(up.pid, seen);
      await sleep(50);
    }
    assert.match(run.stdout(), /pyexec is up/, run.stderr());
    collectDescendants(up!.pid!, seen);
    process.kill(-up!.pid!, 'SIGTERM');
    assert.equal(await noneLeft(run.exit), 0, run.stderr());
    assert.doesNotMatch(run.stderr(), /ECONNREFUSED/, 'Redis stayed up while the fleet drained');
    assert.ok(has([...seen.values()], /jupyter_server/) && has([...seen.values()], /redis-server/));
  });
});
