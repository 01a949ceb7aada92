import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { ExecutorUnavailableError, RequestInputError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ExecutionMode } from '../modes.js';
import { pythonExecutable, scrubbedEnv } from '../python-env.js';
import { inSpan, SPAN } from '../telemetry/tracing.js';
import type { ExecutionOutcome, ExecutionTask, Executor } from './executor.js';
import { ForkServer, ForkServerError } from './fork-server.js';
import { missingResults, type RuntimeRecord, unserializableResults } from './outcomes.js';

export interface LocalExecutorOptions {
  /** The project's Python (with pyexec_runtime importable through PYTHONPATH). */
  python?: string;
  /** Extra environment per mode (execution.modes.<mode>.environment, EPICS settings). */
  modeEnv?: Partial<Record<ExecutionMode, Record<string, string>>>;
  /** Bytes kept per output stream. */
  maxOutputBytes?: number;
  /** How the subprocess confines itself (config `execution.confinement`). @defaultValue "landlock" */
  confinement?: 'landlock' | 'deployment';
  /** Fork runs from a warm zygote (fork-server.ts); false: a new Python per run. @defaultValue true */
  forkServer?: boolean;
  logger?: Logger;
}

/** How long the executor starts a new Python per run after the zygote could not start. */
const FORK_SERVER_RETRY_MS = 60_000;

interface Exit {
  readonly code: number | null;
  readonly signal: string | null;
  readonly error?: Error;
}

/** runner.py's exit status when it cannot confine itself (it ran nothing). */
const EXIT_NOT_CONFINED = 78;

/** runner.py's execution_metadata.json. */
interface RunnerMetadata extends RuntimeRecord {
  stdout?: string;
  stderr?: string;
}

/**
 * The `local` method: the code runs in a Python subprocess (its own process group) from the
 * project's virtualenv, in the request's execution folder, through `pyexec_runtime.runner`, which
 * confines itself as a kernel of its mode does (docs/security.md) before it reads the code.
 */
export class LocalExecutor implements Executor {
  readonly method = 'local' as const;
  private forks: Promise<ForkServer | null> | undefined;
  private forksFailedAt = 0;

  constructor(private readonly options: LocalExecutorOptions = {}) {}

  /** The warm zygote, started on first use and again after it ends; null: a new Python per run. */
  private async forkServer(python: string): Promise<ForkServer | null> {
    if (this.options.forkServer === false) return null;
    if (Date.now() - this.forksFailedAt < FORK_SERVER_RETRY_MS) return null;
    this.forks ??= ForkServer.start(python, scrubbedEnv({}), this.options.logger).catch((err: Error) => {
      this.forksFailedAt = Date.now();
      this.forks = undefined;
      this.options.logger?.warn({ err: err.message }, 'local method: no zygote, a new Python per run');
      return null;
    });
    const server = await this.forks;
    if (server && !server.alive) {
      // It ended (killed, crashed): a new one for this run.
      this.forks = undefined;
      return this.forkServer(python);
    }
    return server;
  }

  /** The run, forked from the zygote when there is one, else a new Python; `onText` gets its output. */
  private async launch(
    python: string,
    args: string[],
    env: Record<string, string>,
    cwd: string,
    onText: (kind: 'stdout' | 'stderr', text: string) => void,
  ): Promise<{ pid: number | undefined; exited: Promise<Exit> }> {
    const forks = await this.forkServer(python);
    if (forks) {
      try {
        const run = await forks.spawn({ argv: args.slice(2), env, cwd, onOutput: onText });
        const signalName = (n: number) =>
          Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? `signal ${n}`;
        return {
          pid: run.pid,
          exited: run.exit.then(
            (code): Exit => (code < 0 ? { code: null, signal: signalName(-code) } : { code, signal: null }),
            (error: Error): Exit => ({ code: null, signal: null, error }),
          ),
        };
      } catch (err) {
        // Nothing was started: this run takes a new Python.
        if (!(err instanceof ForkServerError)) throw err;
      }
    }
    const child = spawn(python, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    // The decoders keep a character split across two reads whole.
    const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
    child.stdout.on('data', (d: Buffer) => onText('stdout', decoders.stdout.write(d)));
    child.stderr.on('data', (d: Buffer) => onText('stderr', decoders.stderr.write(d)));
    const exited = new Promise<Exit>((resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
      child.once('close', (code, sig) => resolve({ code, signal: sig }));
    });
    return { pid: child.pid, exited };
  }

  async close(): Promise<void> {
    const forks = await this.forks;
    this.forks = undefined;
    await forks?.close();
  }

  /** One run, traced as a child span of the execution stage. */
  execute(task: ExecutionTask, signal: AbortSignal): Promise<ExecutionOutcome> {
    return inSpan(SPAN.localRun, { 'pyexec.mode': task.mode }, async (span) => {
      const outcome = await this.run(task, signal);
      span.setAttribute('pyexec.outcome', outcome.status);
      return outcome;
    });
  }

  private async run(task: ExecutionTask, signal: AbortSignal): Promise<ExecutionOutcome> {
    const started = Date.now();
    const maxOut = this.options.maxOutputBytes ?? 1_000_000;
    const python = pythonExecutable(this.options.python);
    const env = scrubbedEnv({
      ...(this.options.modeEnv?.[task.mode] ?? {}),
      PYEXEC_EXECUTION_MODE: task.mode,
      PYEXEC_CONFINEMENT: this.options.confinement ?? 'landlock',
    });
    const args = [
      '-m',
      'pyexec_runtime.runner',
      task.executionFolder,
      '--mode',
      task.mode,
      '--max-output',
      String(maxOut),
    ];
    let out = '';
    let err = '';
    // The runner echoes what it keeps of the code's output as it is written (live output).
    const onText = (kind: 'stdout' | 'stderr', text: string) => {
      if (!text) return;
      if (kind === 'stdout') out = (out + text).slice(-maxOut);
      else err = (err + text).slice(-maxOut);
      if (task.onOutput) {
        try {
          task.onOutput({ kind, text });
        } catch {
          // Live output is best effort.
        }
      }
    };
    const child = await this.launch(python, args, env, task.executionFolder, onText);
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, task.timeoutMs);
    const onAbort = () => killGroup();
    signal.addEventListener('abort', onAbort, { once: true });
    const exit = await child.exited;
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    // Anything the code left behind in its process group goes too.
    killGroup();
    const durationMs = Date.now() - started;
    if (exit.error instanceof ForkServerError)
      // The zygote ended while the run ran: the code may have run, and its result is not known.
      throw new ExecutorUnavailableError(`the local runs' zygote ended during the run: ${exit.error.message}`, {
        started: true,
        cause: exit.error,
      });
    if (exit.error)
      throw new ExecutorUnavailableError(`cannot start ${python}: ${exit.error.message}`, { cause: exit.error });
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('execution cancelled');
    if (exit.code === EXIT_NOT_CONFINED) {
      // The runner refused before reading the code: an infrastructure fault of this machine.
      throw new ExecutorUnavailableError(`the local runner cannot confine itself: ${err.trim().slice(-2000)}`);
    }
    if (timedOut) {
      return {
        status: 'code_error',
        errorType: 'timeout',
        errorName: 'TimeoutError',
        message: `Python execution timed out after ${task.timeoutMs / 1000} seconds (process group killed)`,
        traceback: '',
        stdout: out,
        stderr: err,
        durationMs,
      };
    }
    let meta: RunnerMetadata;
    try {
      meta = JSON.parse(
        await readFile(path.join(task.executionFolder, 'execution_metadata.json'), 'utf8'),
      ) as RunnerMetadata;
    } catch {
      // The process died before the runner could write its metadata: the code ended it
      // (os._exit, a signal, a crash in native code).
      return {
        status: 'code_error',
        errorType: 'process_exited',
        errorName: exit.signal ? `Signal ${exit.signal}` : `Exit ${exit.code}`,
        message: `the Python process ended before finishing (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`})`,
        traceback: err.slice(-5000),
        stdout: out,
        stderr: err,
        durationMs,
      };
    }
    const stdout = meta.stdout ?? '';
    const stderr = meta.stderr ?? '';
    if (meta.error_kind === 'input') throw new RequestInputError(meta.error ?? "the request's data cannot be decoded");
    if (meta.error_kind === 'refused') {
      return {
        status: 'refused',
        errorType: meta.error_type ?? 'refused',
        message: meta.error ?? 'refused',
        stdout,
        stderr,
        durationMs,
      };
    }
    if (!meta.success) {
      return {
        status: 'code_error',
        errorType: meta.error_type ?? 'runtime',
        errorName: meta.error_name ?? 'Error',
        message: `${meta.error_name ?? 'Error'}: ${meta.error ?? ''}`,
        traceback: meta.traceback ?? '',
        stdout,
        stderr,
        durationMs,
      };
    }
    if (meta.results_missing) return missingResults({ stdout, stderr, durationMs });
    if (meta.results_save_error) return unserializableResults(meta.results_save_error, { stdout, stderr, durationMs });
    const results = JSON.parse(await readFile(path.join(task.executionFolder, 'results.json'), 'utf8')) as unknown;
    return { status: 'ok', results, stdout, stderr, figures: meta.figures ?? [], durationMs };
  }
}
