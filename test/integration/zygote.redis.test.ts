/**
 * Kernels forked from a warm zygote (issue 14), on real parts: Jupyter servers spawned by pyexec
 * (one per mode, each with its zygote through the kernelspec's provisioner), a pool in a real Redis,
 * a soft IOC. Covers what unit tests cannot: that a kernel is a fork of its server's zygote, that a
 * kernel's crash leaves the zygote alive, that a kernel's children end with it, and that a zygote
 * killed under a running request is replaced without losing the request.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionMode, ExecutionOutcome } from '../../src/executors/executor.js';
import { createExecutors, type ExecutorSet } from '../../src/executors/index.js';
import { silentLogger } from '../../src/logger.js';
import { keyPrefix } from '../../src/redis/connection.js';
import { eventually, redis, sampleRequest, stopRedis, type TestBed, testBed, testConfig } from '../support/harness.js';
import { iocModes, kernelTask, type SoftIocWithReadOnly, startIocWithReadOnlyPort } from '../support/kernel-support.js';

let ioc: SoftIocWithReadOnly;

function children(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
};
const alive = (pid: number) => cmdline(pid) !== '';

/** The zygote of a Jupyter server (its child running pyexec_runtime.zygote). */
function zygoteOf(serverPid: number): number | undefined {
  return children(serverPid).find((p) => cmdline(p).includes('pyexec_runtime.zygote'));
}

before(async () => {
  ioc = await startIocWithReadOnlyPort();
});
after(async () => {
  await ioc?.stop();
  await stopRedis();
});

describe('kernels forked from a zygote', () => {
  let set: ExecutorSet;
  let root: string;
  before(async () => {
    const server = await redis();
    const config = testConfig({
      execution: {
        execution_method: 'container',
        modes: iocModes(ioc),
        container: { pool: { spares_per_mode: 1, lease_wait_ms: 120_000, reap_interval_ms: 500 } },
      },
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
  });

  function run(code: string, mode: ExecutionMode = 'read_only'): Promise<ExecutionOutcome> {
    const executionFolder = mkdtempSync(path.join(root, 'run-'));
    mkdirSync(path.join(executionFolder, 'figures'));
    const task = kernelTask(code, mode, { executionFolder });
    return set.executors.container!.execute(task, new AbortController().signal);
  }
  const server = (mode: ExecutionMode) => set.spawned.find((s) => s.modes.includes(mode))!;
  const results = (out: ExecutionOutcome) => {
    assert.equal(out.status, 'ok', JSON.stringify(out));
    return out.status === 'ok' ? (out.results as Record<string, number>) : {};
  };

  it('runs each request in a fork of its server’s zygote', async () => {
    const r = results(await run('import os\nresults = {"pid": os.getpid(), "ppid": os.getppid()}'));
    const zygote = zygoteOf(server('read_only').pid!);
    assert.ok(zygote, 'the read-only server has no zygote');
    assert.equal(r['ppid'], zygote, 'the kernel is not the zygote’s child');
    assert.ok(zygoteOf(server('write_access').pid!), 'the write server has a zygote of its own');
    assert.notEqual(zygoteOf(server('write_access').pid!), zygote);
  });

  it('a kernel that crashes leaves its zygote alive, and the next request runs on a fresh fork', async () => {
    const zygote = zygoteOf(server('read_only').pid!);
    await assert.rejects(run('import os\nos._exit(1)'), /died while running/);
    const r = results(await run('import os\nresults = {"ppid": os.getppid()}'));
    assert.equal(zygoteOf(server('read_only').pid!), zygote, 'the zygote was replaced');
    assert.equal(r['ppid'], zygote);
  });

  it("a kernel's subprocesses end with it (its process group)", async () => {
    const r = results(
      await run(
        'import subprocess\np = subprocess.Popen(["sleep", "600"])\nresults = {"child": p.pid}',
        'write_access',
      ),
    );
    assert.ok(alive(r['child']!), 'the child did not start');
    // After the lease, the pool replaces the kernel and shuts the used one down.
    await eventually(async () => (alive(r['child']!) ? undefined : true), 30_000, "the kernel's child to end");
  });

  it('a zygote killed with -9 is replaced: its kernels end, and fresh forks of a new zygote serve requests', async () => {
    const serverPid = server('read_only').pid!;
    const old = zygoteOf(serverPid)!;
    const kernels = children(old);
    assert.ok(kernels.length > 0, 'the zygote has no kernels');
    process.kill(old, 'SIGKILL');
    // Its kernels end with it (ipykernel's parent poller, within a second or two).
    await eventually(async () => (kernels.some(alive) ? undefined : true), 20_000, "the zygote's kernels to end");
    const r = await eventually(
      async () => {
        const out = await run('import os\nresults = {"ppid": os.getppid()}').catch(() => undefined);
        return out?.status === 'ok' ? (out.results as Record<string, number>) : undefined;
      },
      90_000,
      'a request to run after the zygote died',
    );
    const fresh = zygoteOf(serverPid);
    assert.ok(fresh && fresh !== old, 'no new zygote');
    assert.equal(r['ppid'], fresh);
  });
});

describe('a request running when its zygote is killed', () => {
  let bed: TestBed | undefined;
  let set: ExecutorSet | undefined;
  afterEach(async () => {
    await bed?.close();
    await set?.close();
  });

  it('is not lost: read-only code runs again on a fresh kernel and succeeds', async () => {
    const code =
      'import os, time\nopen("started-" + str(os.getpid()), "w").close()\ntime.sleep(4)\nresults = {"pid": os.getpid()}';
    bed = await testBed({
      execution: {
        execution_method: 'container',
        modes: iocModes(ioc),
        generators: { mock: { code } },
        container: { pool: { spares_per_mode: 1, lease_wait_ms: 120_000, reap_interval_ms: 500 } },
      },
    });
    set = await createExecutors(bed.config, {
      redisUrl: bed.redisUrl,
      prefix: keyPrefix(bed.config.pyexec.redis.prefix),
      logger: silentLogger(),
    });
    await bed.startFleet({ executors: set.executors });
    const { requestId } = await bed.client.submit(sampleRequest());
    const serverPid = set.spawned.find((s) => s.modes.includes('read_only'))!.pid!;
    const root = bed.config.pyexec.execution_root;
    const folder = await eventually(
      async () => {
        for (const month of readdirSync(root)) {
          const hit = readdirSync(path.join(root, month)).find((d) => d.endsWith(requestId.slice(0, 8)));
          if (hit) return path.join(root, month, hit);
        }
        return undefined;
      },
      30_000,
      'the execution folder',
    );
    await eventually(
      async () => (readdirSync(folder).some((f) => f.startsWith('started-')) ? true : undefined),
      60_000,
      'the code to start',
    );
    process.kill(zygoteOf(serverPid)!, 'SIGKILL');
    await sleep(100);
    const done = await bed.client.wait(requestId, { timeoutMs: 120_000 });
    assert.equal(done.kind === 'finished' && done.response.status, 'succeeded', JSON.stringify(done));
    assert.ok(readdirSync(folder).filter((f) => f.startsWith('started-')).length >= 2, 'it did not run again');
  });
});
