/**
 * Shared set-up of the kernel integration tests: a task for an executor, a config for the
 * `container` method against a soft IOC, and the soft IOC with a read-only endpoint.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type SoftIoc, startSoftIoc } from '../../src/epics/soft-ioc.js';
import type { ExecutionMode, ExecutionTask } from '../../src/executors/executor.js';
import { PythonExecutionRequest } from '../../src/request.js';

const _run = promisify(execFile);

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

/** The simulated accelerator with its read-only endpoint (`sim_ioc --read-only-port`). */
export async function startIocWithReadOnlyPort(): Promise<SoftIocWithReadOnly> {
  const ioc = await startSoftIoc({ readOnlyEndpoint: true });
  if (!ioc.readOnlyEnv) throw new Error('the soft IOC started without its read-only endpoint');
  return ioc as SoftIocWithReadOnly;
}
