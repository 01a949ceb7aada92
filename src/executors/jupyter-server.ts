import { type ChildProcess, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ExecutorUnavailableError } from '../errors.js';
import { freePort } from '../free-port.js';
import { EXECUTION_MODES } from '../modes.js';
import { spawnOwned, stopGroup } from '../process-group.js';
import { pythonExecutable, pythonPackageDir, scrubbedEnv } from '../python-env.js';
import type { ExecutionMode } from './executor.js';
import type { KernelModes } from './pool-config.js';

const run = promisify(execFile);

/** The jupyter_server configuration shared by spawned servers and the kernel image (deploy/kernel/). */
export const jupyterServerConfigFile = path.join(pythonPackageDir, 'pyexec_runtime', 'jupyter_server_config.py');

/** A Jupyter server of the pool, spawned or listed in the config. */
export interface JupyterServerRef {
  readonly name: string;
  readonly url: string;
  readonly token: string;
  readonly modes: readonly ExecutionMode[];
}

export interface SpawnedJupyterServer extends JupyterServerRef {
  readonly pid: number | undefined;
  /** The server's private runtime folder (its jpserver file, its kernels' connection files). */
  readonly runtimeDir: string;
  /** Stops the server (its kernels with it) and removes its folder. Idempotent. */
  stop(): Promise<void>;
}

export interface SpawnJupyterServerOptions {
  /** Kernel names and environment per mode (config `execution.modes`). */
  modes: KernelModes;
  /** Modes this server runs kernels for. @defaultValue both */
  serve?: readonly ExecutionMode[];
  python?: string;
  /** Where kernels start (and relative paths resolve). @defaultValue a private temporary folder */
  rootDir?: string;
  startupTimeoutMs?: number;
  /** More jupyter_server command-line options (benchmarks compare configurations with it). */
  extraArgs?: readonly string[];
  /** Fork kernels from a warm zygote (the kernelspecs' provisioner); false: jupyter_client's
   * ordinary launcher, a new Python per kernel (benchmarks compare the two). @defaultValue true */
  forkKernels?: boolean;
  /** How kernels confine themselves (config `execution.confinement`). @defaultValue "landlock" */
  confinement?: 'landlock' | 'deployment';
  /** The execution root: kernels may write beneath it, narrowed to one request's folder per run. */
  executionRoot?: string;
  /** Port and token to serve with (a server restarted where the pool knows it). @defaultValue a free port, a random token */
  port?: number;
  token?: string;
}

/**
 * Starts a Jupyter server on a free loopback port with pyexec's kernelspecs (installed into a
 * private prefix by `pyexec_runtime.kernelspecs`, the same module the kernel image runs) and
 * pyexec's jupyter_server_config.py. The token is read from a file that is deleted once the
 * server answers, so it is in neither the server's command line nor its kernels' environment.
 * A server serves the modes of `serve` only (one kernelspec each): the fleet starts one server
 * per mode, so read-only kernels share no runtime folder, token or server with write kernels.
 * Kernels confine themselves (pyexec_runtime.kernel); their private temporary folders live in the
 * server's folder and go with it.
 */
export async function spawnJupyterServer(options: SpawnJupyterServerOptions): Promise<SpawnedJupyterServer> {
  const python = pythonExecutable(options.python);
  const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-jupyter-'));
  const rootDir = options.rootDir ?? path.join(dir, 'work');
  mkdirSync(rootDir, { recursive: true });
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const serve = options.serve ?? EXECUTION_MODES;
  const env = scrubbedEnv({});
  try {
    await run(
      python,
      [
        '-m',
        'pyexec_runtime.kernelspecs',
        'install',
        '--prefix',
        dir,
        '--python',
        python,
        '--modes-json',
        JSON.stringify(options.modes),
        ...serve.flatMap((mode) => ['--only', mode]),
        ...(options.forkKernels === false ? ['--no-provisioner'] : []),
      ],
      {
        env,
        timeout: 30_000,
      },
    );
  } catch (err) {
    cleanup();
    throw new ExecutorUnavailableError(`cannot install kernelspecs with ${python}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const port = options.port ?? (await freePort());
  const token = options.token ?? randomBytes(24).toString('hex');
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  const serverEnv = {
    ...env,
    JUPYTER_PATH: path.join(dir, 'share', 'jupyter'),
    JUPYTER_CONFIG_DIR: path.join(dir, 'config'),
    JUPYTER_DATA_DIR: path.join(dir, 'data'),
    JUPYTER_RUNTIME_DIR: path.join(dir, 'runtime'),
    JUPYTER_TOKEN_FILE: tokenFile,
    JUPYTER_PLATFORM_DIRS: '1',
    // Read by the kernels (kernelspec `${VAR}`s, pyexec_runtime.kernel): see confine.py.
    PYEXEC_CONFINEMENT: options.confinement ?? 'landlock',
    PYEXEC_KERNEL_TMP: path.join(dir, 'kernel-tmp'),
    ...(options.executionRoot ? { PYEXEC_EXECUTION_ROOT: path.resolve(options.executionRoot) } : {}),
  };
  const args = [
    '-m',
    'jupyter_server',
    '--config',
    jupyterServerConfigFile,
    '--no-browser',
    `--ServerApp.ip=127.0.0.1`,
    `--ServerApp.port=${port}`,
    '--ServerApp.port_retries=0',
    `--ServerApp.root_dir=${rootDir}`,
  ];
  for (const mode of serve) args.push(`--KernelSpecManager.allowed_kernelspecs=${options.modes[mode].kernel_name}`);
  if (process.getuid?.() === 0) args.push('--allow-root');
  args.push(...(options.extraArgs ?? []));
  const child: ChildProcess = spawnOwned(python, args, {
    env: serverEnv,
    cwd: rootDir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
  const url = `http://127.0.0.1:${port}/`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // SIGTERM: jupyter_server shuts its kernels down before it exits.
    await stopGroup(child, 8000);
    cleanup();
  };
  const deadline = Date.now() + (options.startupTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new ExecutorUnavailableError(
        `Jupyter server exited at start (${child.exitCode ?? child.signalCode}): ${stderr.trim().slice(-2000)}`,
      );
    }
    try {
      const res = await fetch(`${url}api/status`, {
        headers: { Authorization: `token ${token}` },
        signal: AbortSignal.timeout(2000),
      });
      if (res.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new ExecutorUnavailableError(
        `Jupyter server on port ${port} did not answer within ${options.startupTimeoutMs ?? 60_000} ms: ${stderr.trim().slice(-2000)}`,
      );
    }
    await sleep(100);
  }
  rmSync(tokenFile, { force: true });
  return {
    name: `local:${port}`,
    url,
    token,
    modes: [...serve],
    pid: child.pid,
    runtimeDir: serverEnv.JUPYTER_RUNTIME_DIR,
    stop,
  };
}
