/**
 * Fleet worker processes (test/support/ops-fleet-entry.ts) as separate OS processes against one
 * Redis, for the shutdown tests and the scale benchmark.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Config } from '../../src/config.js';
import { projectRoot } from '../../src/python-env.js';
import type { Stage } from '../../src/queues/envelope.js';

export interface FleetProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly metricsPort: number;
  readonly stages: readonly Stage[];
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<number | string>;
  stderr(): string;
  url(route: string): string;
}

let seq = 0;

/** Writes `config` as a file (JSON is YAML) and starts a worker process for `stages`; resolves once it runs. */
export async function spawnFleetProcess(
  config: Config,
  redisUrl: string,
  stages: readonly Stage[],
  env: Record<string, string> = {},
  /** The process entry, relative to the project. @defaultValue test/support/ops-fleet-entry.ts */
  entry = 'test/support/ops-fleet-entry.ts',
): Promise<FleetProcess> {
  const file = path.join(config.pyexec.execution_root, `ops-config-${process.pid}-${seq++}.json`);
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, entry), file, redisUrl, ...stages], {
    cwd: projectRoot,
    env: { ...process.env, PYEXEC_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const first = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', resolve);
    exited.then((code) => reject(new Error(`fleet process exited (${code}) before it ran: ${stderr}`)));
  });
  const { pid, metricsPort } = JSON.parse(first) as { pid: number; metricsPort: number };
  return {
    child,
    pid,
    metricsPort,
    stages,
    exited,
    stderr: () => stderr,
    url: (route) => `http://127.0.0.1:${metricsPort}${route}`,
  };
}

/** Stops what is still running (SIGKILL): for afterEach. */
export async function killAll(processes: FleetProcess[]): Promise<void> {
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
}
