/**
 * Confinement (issue 13): hostile code in a read-only kernel cannot write to the accelerator, reach
 * the fleet or another kernel, or read secrets — whatever it does in its own process. Real parts:
 * a soft IOC with a read-write and a read-only endpoint, one Jupyter server per mode spawned by
 * pyexec, kernels leased from a pool in a real Redis (with its password), and after every route an
 * independent Channel Access client reads the PV.
 *
 * Every route also runs once in a kernel that is NOT confined (PYEXEC_CONFINEMENT=deployment) as a
 * control: there the write lands, or the file opens, so the refusal in the confined kernel is the
 * confinement's doing and each assertion can fail. A write kernel is checked too: it reaches its
 * Channel Access endpoint and nothing else.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ExecutionMode, ExecutionOutcome } from '../../src/executors/executor.js';
import { JupyterExecutor } from '../../src/executors/jupyter-executor.js';
import { type SpawnedJupyterServer, spawnJupyterServer } from '../../src/executors/jupyter-server.js';
import { KernelPool } from '../../src/executors/kernel-pool.js';
import { LocalExecutor } from '../../src/executors/local-executor.js';
import { KernelPoolSettings, kernelModes } from '../../src/executors/pool-config.js';
import { silentLogger } from '../../src/logger.js';
import { projectRoot, pythonExecutable } from '../../src/python-env.js';
import type { RedisConnection as Redis } from '../../src/redis/connection.js';
import { createRedis, keyPrefix } from '../../src/redis/connection.js';
import { PythonExecutionRequest } from '../../src/request.js';
import { type EscapeFacts, escapeProgram, escapeRecord, ROUTES } from '../support/escape-routes.js';
import { redis, stopRedis, testConfig } from '../support/harness.js';
import { iocModes, type SoftIocWithReadOnly, startIocWithReadOnlyPort } from '../support/kernel-support.js';

const PV = 'DEVICE:PV:SETPOINT';
const START = 10;
const prelude = readFileSync(path.join(projectRoot, 'test/fixtures/escape/prelude.py'), 'utf8');

interface Fleet {
  servers: SpawnedJupyterServer[];
  pool: KernelPool;
  executor: JupyterExecutor;
  redis: Redis;
}

let ioc: SoftIocWithReadOnly;
let config: ReturnType<typeof testConfig>;
let confined: Fleet;
let control: Fleet;
let facts: EscapeFacts;
let scratch: string;
let unixServer: Server;
let abstractServer: ChildProcess;
let unixConnections = 0;

async function startFleet(confinement: 'landlock' | 'deployment', modes: readonly ExecutionMode[]): Promise<Fleet> {
  const server = await redis();
  const kernels = kernelModes(config);
  const servers: SpawnedJupyterServer[] = [];
  for (const mode of modes) {
    servers.push(
      await spawnJupyterServer({
        modes: kernels,
        serve: [mode],
        confinement,
        executionRoot: config.pyexec.execution_root,
      }),
    );
  }
  const connection = createRedis(server.url, 'worker');
  const pool = await KernelPool.start({
    redis: connection,
    prefix: keyPrefix(config.pyexec.redis.prefix),
    poolId: `${confinement}-${randomUUID().slice(0, 8)}`,
    servers,
    modes: kernels,
    settings: KernelPoolSettings.parse({ spares_per_mode: 2, lease_wait_ms: 120_000, reap_interval_ms: 1000 }),
    logger: silentLogger(),
    privatePool: true,
  });
  const executor = new JupyterExecutor({ pool, confinement, maxOutputBytes: 200_000 });
  return { servers, pool, executor, redis: connection };
}

async function stopFleet(fleet: Fleet | undefined): Promise<void> {
  if (!fleet) return;
  await fleet.pool.close();
  await Promise.allSettled(fleet.servers.map((s) => s.stop()));
  fleet.redis.disconnect();
}

let lastFolder = '';

function run(fleet: Fleet, code: string, mode: ExecutionMode = 'read_only'): Promise<ExecutionOutcome> {
  const folder = path.join(config.pyexec.execution_root, '2026-12', `run-${randomUUID().slice(0, 8)}`);
  mkdirSync(path.join(folder, 'figures'), { recursive: true });
  lastFolder = folder;
  const request = PythonExecutionRequest.parse({ user_query: 'q', task_objective: 'o', execution_folder_name: 'x' });
  return fleet.executor.execute(
    { requestId: randomUUID(), code, mode, executionFolder: folder, timeoutMs: 120_000, request },
    new AbortController().signal,
  );
}

const metadata = (folder: string) =>
  JSON.parse(readFileSync(path.join(folder, 'execution_metadata.json'), 'utf8')) as {
    confinement: { method: string; landlock_abi: number; connect_ports?: number[]; layers?: number };
  };

function listen(server: Server, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address, () => resolve());
  });
}

/** The connection file, info and pid of a live write kernel: kernels are replaced after every lease. */
function writeKernelFacts(rw: SpawnedJupyterServer) {
  const writeConnection = kernelConnectionFile(rw);
  const writeKernel = JSON.parse(readFileSync(writeConnection, 'utf8')) as Record<string, unknown>;
  return { writeConnection, writeKernel };
}

/** Facts that change as kernels are replaced, read again before a route runs. */
function refreshFacts(): void {
  const rw = confined.servers[1]!;
  const { writeConnection, writeKernel } = writeKernelFacts(rw);
  facts.writeKernel = writeKernel;
  facts.secretFiles['write_connection_file'] = writeConnection;
  facts.fleetPorts['write_kernel_shell'] = Number(writeKernel['shell_port']);
  facts.pids['write_kernel'] = writeKernelPid(rw);
}

function kernelConnectionFile(server: SpawnedJupyterServer): string {
  const file = readdirSync(server.runtimeDir).find((f) => f.startsWith('kernel-') && f.endsWith('.json'));
  assert.ok(file, `no kernel connection file in ${server.runtimeDir}`);
  return path.join(server.runtimeDir, file);
}

/** A write kernel's pid: a child of the write server's zygote (kernels are forked from it). */
function writeKernelPid(server: SpawnedJupyterServer): number {
  const childrenOf = (pid: number) =>
    readdirSync('/proc').filter((entry) => {
      if (!/^\d+$/.test(entry)) return false;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    });
  const cmd = (pid: string) => readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  const zygote = childrenOf(server.pid!).find((p) => cmd(p).includes('pyexec_runtime.zygote'));
  const kernel = zygote && childrenOf(Number(zygote))[0];
  if (!kernel) throw new Error(`no kernel forked by the zygote of ${server.url}`);
  return Number(kernel);
}

before(async () => {
  ioc = await startIocWithReadOnlyPort();
  config = testConfig({ execution: { execution_method: 'container', modes: iocModes(ioc) } });
  confined = await startFleet('landlock', ['read_only', 'write_access']);
  control = await startFleet('deployment', ['read_only']);
  scratch = mkdtempSync(path.join(tmpdir(), 'pyexec-escape-'));
  const other = path.join(config.pyexec.execution_root, '2026-12', 'other-request');
  mkdirSync(other, { recursive: true });
  writeFileSync(path.join(other, 'results.json'), '{"genuine": true}');
  const stateFile = path.join(scratch, 'up.json');
  writeFileSync(stateFile, JSON.stringify({ redisUrl: (await redis()).url }), { mode: 0o600 });
  unixServer = createServer((s) => {
    unixConnections++;
    s.destroy();
  });
  await listen(unixServer, path.join(scratch, 'fleet.sock'));
  const abstractName = `pyexec-escape-${randomUUID().slice(0, 8)}`;
  // Node pads abstract names to the whole sun_path; a Python listener binds the name as given.
  abstractServer = spawn(
    pythonExecutable(),
    [
      '-c',
      'import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.bind("\\0" + sys.argv[1])\ns.listen()\nprint("ready", flush=True)\nwhile True:\n    s.accept()[0].close()',
      abstractName,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    abstractServer.stdout!.once('data', () => resolve());
    abstractServer.once('exit', (code) => reject(new Error(`abstract socket listener exited ${code}`)));
  });
  const [ro, rw] = confined.servers as [SpawnedJupyterServer, SpawnedJupyterServer];
  const { writeConnection, writeKernel } = writeKernelFacts(rw);
  const jpserver = readdirSync(ro.runtimeDir).find((f) => /^jpserver-\d+\.json$/.test(f));
  assert.ok(jpserver, 'the read-only server wrote no jpserver file');
  facts = {
    writePort: ioc.port,
    readOnlyPort: ioc.readOnlyPort!,
    pv: PV,
    fleetPorts: {
      redis: (await redis()).port,
      jupyter_ro: Number(new URL(ro.url).port),
      jupyter_rw: Number(new URL(rw.url).port),
      write_kernel_shell: Number(writeKernel['shell_port']),
    },
    secretFiles: {
      jupyter_server_info: path.join(ro.runtimeDir, jpserver),
      write_connection_file: writeConnection,
      state_file: stateFile,
      config: path.join(projectRoot, 'config.yml'),
      repository: path.join(projectRoot, 'package.json'),
    },
    otherFolder: other,
    unixSocket: path.join(scratch, 'fleet.sock'),
    abstractSocket: abstractName,
    writeKernel,
    pids: {
      jupyter_ro: ro.pid!,
      jupyter_rw: rw.pid!,
      write_kernel: writeKernelPid(rw),
      test_process: process.pid,
    },
  };
});

after(async () => {
  await stopFleet(confined);
  await stopFleet(control);
  unixServer?.close();
  abstractServer?.kill('SIGKILL');
  await ioc?.stop();
  await stopRedis();
  config?.cleanup();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('a read-only kernel is confined by the operating system', () => {
  let value = 100;
  for (const route of ROUTES) {
    describe(route.name, () => {
      it('is refused in a confined kernel, and the PV is unchanged at the IOC', async () => {
        refreshFacts();
        await ioc.caput(PV, START);
        const out = await run(confined, escapeProgram(prelude, facts, route, ++value));
        const record = escapeRecord(out.stdout);
        for (const [attempt, errno] of Object.entries(route.refused)) {
          const got = record[attempt];
          assert.ok(got, `${attempt} did not run: ${JSON.stringify(record)}\n${out.stdout.slice(-3000)}`);
          assert.equal(got.ok, false, `${attempt} got through: ${JSON.stringify(got)}`);
          if (errno !== 'any') assert.equal(got.errno, errno, `${attempt}: ${JSON.stringify(got)}`);
        }
        assert.equal(await ioc.caget(PV), START, 'a write reached the IOC');
      });
      if (route.control) {
        const expected = route.control;
        it('works in a kernel that is not confined (the control)', async () => {
          refreshFacts();
          await ioc.caput(PV, START);
          const before = unixConnections;
          const out = await run(control, escapeProgram(prelude, facts, route, ++value));
          const record = escapeRecord(out.stdout);
          for (const attempt of expected.ok ?? []) {
            assert.equal(record[attempt]?.ok, true, `${attempt} failed unconfined: ${JSON.stringify(record[attempt])}`);
          }
          if (expected.write) assert.equal(await ioc.caget(PV), value, 'the unconfined write did not land');
          if ('unix_path' in route.refused) assert.ok(unixConnections > before, 'no connection reached the socket');
          await ioc.caput(PV, START);
        });
      }
    });
  }

  it('reports the confinement in force in every run record (and the control says it is not confined)', async () => {
    const out = await run(confined, 'results = {"ok": True}');
    assert.equal(out.status, 'ok', JSON.stringify(out));
    const { confinement } = metadata(lastFolder);
    assert.equal(confinement.method, 'landlock');
    assert.ok(confinement.landlock_abi >= 6, `ABI ${confinement.landlock_abi}`);
    assert.deepEqual(confinement.connect_ports, [facts.readOnlyPort]);
    assert.equal(confinement.layers, 2, 'the run did not narrow the kernel to its folder');
    const unconfined = await run(control, 'results = {"ok": True}');
    assert.equal(unconfined.status, 'ok', JSON.stringify(unconfined));
    assert.equal(metadata(lastFolder).confinement.method, 'deployment');
  });

  it('refuses to give code to a kernel whose confinement is not the one the fleet requires', async () => {
    const strict = new JupyterExecutor({ pool: control.pool, confinement: 'landlock' });
    const folder = path.join(config.pyexec.execution_root, '2026-12', `run-${randomUUID().slice(0, 8)}`);
    mkdirSync(folder, { recursive: true });
    const request = PythonExecutionRequest.parse({ user_query: 'q', task_objective: 'o', execution_folder_name: 'x' });
    await assert.rejects(
      strict.execute(
        {
          requestId: randomUUID(),
          code: 'open("ran.txt", "w").write("ran")\nresults = {}',
          mode: 'read_only',
          executionFolder: folder,
          timeoutMs: 30_000,
          request,
        },
        new AbortController().signal,
      ),
      /confinement is deployment, the fleet requires landlock/,
    );
    assert.equal(readdirSync(folder).includes('ran.txt'), false, 'the code ran');
  });
});

describe('a write kernel is confined too', () => {
  it('writes through its Channel Access endpoint, and reaches nothing else', async () => {
    await ioc.caput(PV, START);
    const code = [
      prelude,
      'import epics, socket',
      `attempt("caput", lambda: epics.caput(${JSON.stringify(PV)}, 42.5, wait=True, timeout=5))`,
      ...Object.entries({ ...facts.fleetPorts, read_only_ioc: facts.readOnlyPort }).map(
        ([name, port]) =>
          `attempt("port_${name}", lambda: socket.create_connection(("127.0.0.1", ${port}), timeout=3).close())`,
      ),
      `attempt("read_state", lambda: open(${JSON.stringify(facts.secretFiles['state_file'])}).read())`,
      'report()',
      'results = {"escape": ESCAPE}',
    ].join('\n');
    const out = await run(confined, code, 'write_access');
    const record = escapeRecord(out.stdout);
    assert.equal(record['caput']?.ok, true, JSON.stringify(record['caput']));
    assert.equal(await ioc.caget(PV), 42.5);
    for (const name of [...Object.keys(facts.fleetPorts), 'read_only_ioc']) {
      assert.equal(record[`port_${name}`]?.errno, 13, `port_${name}: ${JSON.stringify(record[`port_${name}`])}`);
    }
    assert.equal(record['read_state']?.errno, 13);
  });
});

describe('the local method confines its subprocess the same way', () => {
  const local = (confinement: 'landlock' | 'deployment') =>
    new LocalExecutor({
      modeEnv: { read_only: ioc.readOnlyEnv, write_access: ioc.env },
      confinement,
      maxOutputBytes: 200_000,
    });
  const picked = [
    'raw Channel Access (socket + struct) to the write port',
    'an os.fork() child',
    'the original subprocess.Popen found through gc, with a fresh _posixsubprocess and LD_PRELOAD',
    'reading secrets: the Jupyter token, connection files, other processes’ /proc, state and config',
    "another request's folder: read, rewrite, add, link and symlink into it, symlink out",
  ];
  let value = 500;
  for (const route of ROUTES.filter((r) => picked.includes(r.name))) {
    it(`refuses: ${route.name} (and the unconfined control gets through)`, async () => {
      for (const confinement of ['landlock', 'deployment'] as const) {
        refreshFacts();
        await ioc.caput(PV, START);
        const folder = path.join(config.pyexec.execution_root, '2026-12', `local-${randomUUID().slice(0, 8)}`);
        mkdirSync(folder, { recursive: true });
        const code = escapeProgram(prelude, facts, route, ++value);
        writeFileSync(path.join(folder, 'code.py'), code);
        const request = PythonExecutionRequest.parse({
          user_query: 'q',
          task_objective: 'o',
          execution_folder_name: 'x',
        });
        const out = await local(confinement).execute(
          { requestId: randomUUID(), code, mode: 'read_only', executionFolder: folder, timeoutMs: 60_000, request },
          new AbortController().signal,
        );
        const record = escapeRecord(out.stdout);
        if (confinement === 'landlock') {
          for (const [attempt, errno] of Object.entries(route.refused)) {
            assert.equal(record[attempt]?.ok, false, `${attempt} got through: ${JSON.stringify(record[attempt])}`);
            if (errno !== 'any') assert.equal(record[attempt]?.errno, errno, `${attempt}: ${JSON.stringify(record)}`);
          }
          assert.equal(await ioc.caget(PV), START, 'a write reached the IOC');
        } else {
          for (const attempt of route.control?.ok ?? [])
            assert.equal(record[attempt]?.ok, true, `${attempt} failed unconfined: ${JSON.stringify(record[attempt])}`);
          if (route.control?.write) assert.equal(await ioc.caget(PV), value, 'the unconfined write did not land');
        }
      }
      await ioc.caput(PV, START);
    });
  }
});
