import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../logger.js';

/** One run forked by the zygote: its output as it comes, and how it ended. */
export interface ForkedRun {
  readonly pid: number;
  /** Resolves once the run's output has all arrived and the process was reaped: its exit code, or
   * minus the number of the signal that ended it. Rejects when the zygote dies first. */
  readonly exit: Promise<number>;
}

export interface ForkSpawn {
  readonly argv: readonly string[];
  /** The run's whole environment (the zygote's is not inherited). */
  readonly env: Record<string, string>;
  readonly cwd: string;
  readonly onOutput: (stream: 'stdout' | 'stderr', text: string) => void;
}

interface Waiter {
  readonly onOutput: ForkSpawn['onOutput'];
  resolve(code: number): void;
  reject(err: Error): void;
}

/** A spawn request waiting for its reply. */
interface Reply {
  readonly onOutput: ForkSpawn['onOutput'];
  resolve(run: ForkedRun): void;
  reject(err: Error): void;
}

/** The zygote ended or could not start: runs fall back to a new Python each. */
export class ForkServerError extends Error {
  override name = 'ForkServerError';
}

/**
 * A warm Python that forks the local method's runs (python/pyexec_runtime/run_server.py): numpy,
 * pandas, matplotlib, pyepics, the runner's own modules and pyepics' libca are loaded once, and
 * each run is a fork that confines itself and runs `pyexec_runtime.runner` (~20 ms of CPU)
 * instead of a new Python (~1.3 s). Each run gets a private temporary folder that the server
 * removes once the run is reaped. The zygote relays each run's stdout and stderr as they come and its exit
 * status once its output is complete, one JSON line each; requests and replies are one line
 * each, in order. A run is its own session and process group (kill `-pid` to end it and what it
 * started). The zygote has no secret in its environment and dies with this process.
 */
export class ForkServer {
  private readonly replies: Reply[] = [];
  private readonly runs = new Map<number, Waiter>();
  private dead: Error | undefined;
  private stderrTail = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly logger?: Logger,
  ) {}

  /** Starts a zygote; rejects with ForkServerError when it cannot warm up or fork safely. */
  static async start(python: string, env: Record<string, string>, logger?: Logger): Promise<ForkServer> {
    const child = spawn(python, ['-m', 'pyexec_runtime.run_server'], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const server = new ForkServer(child, logger);
    child.stderr!.on('data', (d: Buffer) => {
      server.stderrTail = (server.stderrTail + d.toString()).slice(-4000);
    });
    const lines = createInterface({ input: child.stdout! });
    const ready = new Promise<void>((resolve, reject) => {
      const first = (line: string) => {
        let hello: { ok?: boolean; ready?: boolean; error?: string };
        try {
          hello = JSON.parse(line) as typeof hello;
        } catch {
          hello = { ok: false, error: `not JSON: ${line.slice(0, 200)}` };
        }
        if (hello.ok && hello.ready) {
          lines.on('line', (l) => server.onLine(l));
          resolve();
        } else reject(new ForkServerError(`the zygote cannot fork runs: ${hello.error ?? line}`));
      };
      lines.once('line', first);
      child.once('error', (err) => reject(new ForkServerError(`cannot start ${python}: ${err.message}`)));
      child.once('exit', (code, signal) =>
        reject(new ForkServerError(`the zygote exited (${signal ?? code}) before it was ready: ${server.stderrTail}`)),
      );
    });
    child.once('exit', (code, signal) =>
      server.fail(new ForkServerError(`the zygote ended (${signal ?? code}): ${server.stderrTail.slice(-500)}`)),
    );
    child.stdin!.on('error', () => {});
    try {
      await ready;
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    server.hold();
    return server;
  }

  /** An idle zygote does not keep this process alive; one with runs does. */
  private hold(): void {
    const busy = this.replies.length + this.runs.size > 0;
    const handles = [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as unknown as Array<{
      ref?(): void;
      unref?(): void;
    } | null>;
    for (const h of handles) (busy ? h?.ref : h?.unref)?.call(h);
  }

  get alive(): boolean {
    return this.dead === undefined;
  }

  /** Forks a run; its output goes to `onOutput` until `exit` settles. */
  async spawn(run: ForkSpawn): Promise<ForkedRun> {
    if (this.dead) throw this.dead;
    const replied = new Promise<ForkedRun>((resolve, reject) =>
      this.replies.push({ onOutput: run.onOutput, resolve, reject }),
    );
    this.hold();
    this.child.stdin!.write(`${JSON.stringify({ op: 'spawn', argv: run.argv, env: run.env, cwd: run.cwd })}\n`);
    return replied;
  }

  private onLine(line: string): void {
    let msg: { op?: string; ok?: boolean; pid?: number; error?: string; stream?: string; text?: string; code?: number };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      this.logger?.warn({ line: line.slice(0, 200) }, 'zygote: a line that is not JSON');
      return;
    }
    if (msg.op === 'output') {
      const waiter = this.runs.get(msg.pid!);
      try {
        waiter?.onOutput(msg.stream === 'stderr' ? 'stderr' : 'stdout', msg.text ?? '');
      } catch {
        // The listener's problem, not the run's.
      }
    } else if (msg.op === 'exit') {
      const waiter = this.runs.get(msg.pid!);
      this.runs.delete(msg.pid!);
      this.hold();
      waiter?.resolve(msg.code ?? 1);
    } else {
      const reply = this.replies.shift();
      if (reply && msg.ok && typeof msg.pid === 'number') {
        // The run's output and exit lines may come in the same read as this reply (a short run, a
        // busy event loop): it is registered here, before the next line, not once `spawn` resumes.
        const pid = msg.pid;
        const exit = new Promise<number>((resolve, reject) =>
          this.runs.set(pid, { onOutput: reply.onOutput, resolve, reject }),
        );
        reply.resolve({ pid, exit });
      } else reply?.reject(new ForkServerError(`the zygote refused the run: ${msg.error ?? line}`));
      this.hold();
    }
  }

  private fail(err: Error): void {
    this.dead ??= err;
    for (const reply of this.replies.splice(0)) reply.reject(err);
    for (const [pid, waiter] of this.runs) {
      this.runs.delete(pid);
      waiter.reject(err);
    }
    this.hold();
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }
}
