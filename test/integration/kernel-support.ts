/**
 * Shared set-up of the kernel integration tests: a task for an executor, a config for the
 * `container` method against a soft IOC, and the soft IOC with a read-only endpoint.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { caEnv, type SoftIoc } from '../../src/epics/soft-ioc.js';
import type { ExecutionMode, ExecutionTask } from '../../src/executors/executor.js';
import { pythonExecutable, scrubbedEnv } from '../../src/python-env.js';
import { freePort } from '../../src/redis/redis-server.js';
import { PythonExecutionRequest } from '../../src/request.js';

const run = promisify(execFile);

export function kernelTask(
  code: string,
  mode: ExecutionMode,
  extra: Partial<ExecutionTask> = {},
): ExecutionTask & { cleanup(): void } {
  const folder = mkdtempSync(path.join(tmpdir(), 'pyexec-kernel-test-'));
  mkdirSync(path.join(folder, 'figures'));
  const request = PythonExecutionRequest.parse({
    user_query: 'q',
    task_objective: 'o',
    execution_folder_name: 'kernel_test',
  });
  return {
    requestId: randomUUID(),
    code,
    mode,
    executionFolder: folder,
    timeoutMs: 30_000,
    request,
    ...extra,
    cleanup: () => rmSync(folder, { recursive: true, force: true }),
  };
}

/** Mode settings for a config: both modes on this IOC (read-only kernels on its read-only port). */
export function iocModes(ioc: SoftIocWithReadOnly) {
  return {
    read_only: { kernel_name: 'python3-epics-readonly', allows_writes: false, environment: ioc.readOnlyEnv },
    write_access: {
      kernel_name: 'python3-epics-write',
      allows_writes: true,
      requires_approval: true,
      environment: ioc.env,
    },
  };
}

export interface SoftIocWithReadOnly extends SoftIoc {
  /** Channel Access settings of the read-only endpoint (writes refused by the IOC itself). */
  readonly readOnlyEnv: Record<string, string>;
}

/**
 * The simulated accelerator with its read-only endpoint (`sim_ioc --read-only-port`). caget and
 * caput go through `startSoftIoc`'s separate CA client processes, on the read-write port.
 */
export async function startIocWithReadOnlyPort(): Promise<SoftIocWithReadOnly> {
  const roPort = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-ro-ioc-'));
  const port = await freePort();
  const ready = path.join(dir, 'ready');
  const child: ChildProcess = spawn(
    pythonExecutable(),
    ['-m', 'pyexec_runtime.sim_ioc', '--port', String(port), '--read-only-port', String(roPort), '--ready-file', ready],
    { env: scrubbedEnv(caEnv(port)), stdio: ['ignore', 'ignore', 'ignore'] },
  );
  for (let i = 0; ; i++) {
    try {
      readFileSync(ready);
      break;
    } catch {
      if (child.exitCode !== null || i > 300) throw new Error('soft IOC with a read-only port did not start');
      await sleep(50);
    }
  }
  const clients = caClients(port);
  return {
    ...clients,
    port,
    env: caEnv(port),
    readOnlyEnv: { ...caEnv(roPort), EPICS_CA_REPEATER_PORT: String(port + 1) },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Separate Channel Access client processes (pyepics) on the read-write port, as startSoftIoc has. */
function caClients(port: number): Pick<SoftIoc, 'caget' | 'caput'> {
  const client = async (script: string, ...args: string[]) =>
    (
      await run(pythonExecutable(), ['-c', script, ...args], { env: scrubbedEnv(caEnv(port)), timeout: 20_000 })
    ).stdout.trim();
  return {
    async caget(pv) {
      const out = await client('import sys, json, epics; print(json.dumps(epics.caget(sys.argv[1], timeout=5)))', pv);
      return JSON.parse(out.split('\n').at(-1) ?? 'null') as number | string | null;
    },
    async caput(pv, value) {
      const out = await client(
        'import sys, epics; print(epics.caput(sys.argv[1], float(sys.argv[2]), wait=True, timeout=5))',
        pv,
        String(value),
      );
      if (out.split('\n').at(-1) !== '1') throw new Error(`caput ${pv} failed: ${out}`);
    },
  };
}
