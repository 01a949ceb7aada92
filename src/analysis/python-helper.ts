import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { pythonExecutable, scrubbedEnv } from '../python-env.js';
import { AnalysisHelperError, AnalysisResourceError, AnalysisTimeoutError, CodeTooLargeError } from './errors.js';

export interface PythonHelperOptions {
  /** The Python to run (a path, relative to the project root, or a command). @defaultValue the project's .venv */
  readonly python?: string;
  /** Longest time one request may take; the helper is then killed and restarted. @defaultValue 15000 */
  readonly timeoutMs?: number;
  /** Largest program accepted, in UTF-8 bytes. @defaultValue 2097152 (2 MiB) */
  readonly maxCodeBytes?: number;
  /** Address-space limit of the helper process, in MiB (0: none). @defaultValue 2048 */
  readonly maxMemoryMb?: number;
}

type Op = 'analyze' | 'parse' | 'ping';

interface Pending {
  readonly id: number;
  readonly line: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: Error) => void;
  attempts: number;
}

interface Reply {
  id: number | null;
  ok: boolean;
  result?: unknown;
  error?: { type: string; message: string };
}

/**
 * The long-lived Python process behind the analyzer (`python -m pyexec_runtime.analysis.server`),
 * spoken to in JSON lines. Started on the first request, restarted when it dies; one request at a
 * time, each with a timeout and a size limit, so hostile input ends in a typed error, never a hang
 * and never a crash of the calling worker. The process holds no reference on the event loop while
 * idle, so a CLI that used it exits on its own.
 */
export class PythonHelper {
  readonly timeoutMs: number;
  readonly maxCodeBytes: number;
  private readonly python: string;
  private readonly maxMemoryMb: number;
  private proc: ChildProcessWithoutNullStreams | undefined;
  private buffer = '';
  private stderrTail = '';
  private readonly queue: Pending[] = [];
  private inflight: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private closing: Promise<void> | undefined;
  /** How many helper processes were started (for tests and metrics). */
  starts = 0;

  constructor(options: PythonHelperOptions = {}) {
    this.python = pythonExecutable(options.python);
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.maxCodeBytes = options.maxCodeBytes ?? 2 * 1024 * 1024;
    this.maxMemoryMb = options.maxMemoryMb ?? 2048;
  }

  /** Sends one request; resolves with the helper's `result`. */
  request(op: Op, code = '', options: Record<string, unknown> = {}): Promise<unknown> {
    if (this.closing) return Promise.reject(new AnalysisHelperError('the analysis helper is closed'));
    const bytes = Buffer.byteLength(code, 'utf8');
    if (bytes > this.maxCodeBytes) {
      return Promise.reject(
        new CodeTooLargeError(
          `the program is ${bytes} bytes, more than the analysis accepts (${this.maxCodeBytes} bytes)`,
        ),
      );
    }
    const id = this.nextId++;
    // Lone surrogates cannot reach Python as text; the executed file would carry U+FFFD there too.
    const line = `${JSON.stringify({ id, op, code: wellFormed(code), options })}\n`;
    return new Promise((resolve, reject) => {
      this.queue.push({ id, line, resolve, reject, attempts: 0 });
      this.pump();
    });
  }

  /** Stops the helper; pending requests fail with AnalysisHelperError. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const err = new AnalysisHelperError('the analysis helper was closed');
      for (const p of this.queue.splice(0)) p.reject(err);
      if (this.inflight) this.settle()?.reject(err);
      const proc = this.proc;
      this.proc = undefined;
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        proc.stdin.end();
        const kill = setTimeout(() => proc.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(kill);
      }
    })();
    return this.closing;
  }

  private pump(): void {
    if (this.inflight || this.queue.length === 0) {
      if (!this.inflight) this.setRef(false);
      return;
    }
    let proc: ChildProcessWithoutNullStreams;
    try {
      proc = this.ensureProcess();
    } catch (err) {
      const p = this.queue.shift()!;
      p.reject(new AnalysisHelperError(`cannot start the analysis helper: ${(err as Error).message}`, { cause: err }));
      this.pump();
      return;
    }
    const p = this.queue.shift()!;
    this.inflight = p;
    p.attempts += 1;
    this.setRef(true);
    this.timer = setTimeout(() => this.onTimeout(), this.timeoutMs);
    proc.stdin.write(p.line);
  }

  private ensureProcess(): ChildProcessWithoutNullStreams {
    if (this.proc) return this.proc;
    const args = ['-m', 'pyexec_runtime.analysis.server', '--max-memory-mb', String(this.maxMemoryMb)];
    const proc = spawn(this.python, args, { env: scrubbedEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    this.starts += 1;
    this.proc = proc;
    this.buffer = '';
    this.stderrTail = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => this.onData(proc, chunk));
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
    });
    proc.stdin.on('error', () => {}); // EPIPE when the helper died: the exit handler reports it
    proc.on('error', (err) => this.onExit(proc, `could not run ${this.python}: ${err.message}`));
    proc.on('exit', (code, signal) => this.onExit(proc, `exited with ${signal ?? `code ${code}`}`));
    return proc;
  }

  private setRef(active: boolean): void {
    const proc = this.proc;
    if (!proc) return;
    const handles = [proc, proc.stdin, proc.stdout, proc.stderr] as unknown as Array<{
      ref?: () => void;
      unref?: () => void;
    }>;
    for (const h of handles) (active ? h.ref : h.unref)?.call(h);
  }

  private onData(proc: ChildProcessWithoutNullStreams, chunk: string): void {
    if (proc !== this.proc) return;
    this.buffer += chunk;
    let nl = this.buffer.indexOf('\n');
    while (nl >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      this.onLine(line);
      nl = this.buffer.indexOf('\n');
    }
  }

  private onLine(line: string): void {
    let reply: Reply;
    try {
      reply = JSON.parse(line) as Reply;
    } catch {
      this.fail(
        new AnalysisHelperError(`the analysis helper answered something that is not JSON: ${line.slice(0, 200)}`),
      );
      return;
    }
    const p = this.inflight;
    if (!p || reply.id !== p.id) return; // an answer to a request that already timed out
    this.settle();
    if (reply.ok) p.resolve(reply.result);
    else if (reply.error?.type === 'MemoryError') {
      p.reject(new AnalysisResourceError(`the analysis ran out of memory on this program: ${reply.error.message}`));
    } else {
      p.reject(new AnalysisHelperError(`analysis failed: ${reply.error?.type}: ${reply.error?.message}`));
    }
    this.pump();
  }

  private onTimeout(): void {
    const p = this.settle();
    this.kill();
    p?.reject(
      new AnalysisTimeoutError(`the analysis took longer than ${this.timeoutMs} ms on this program (helper restarted)`),
    );
    this.pump();
  }

  private onExit(proc: ChildProcessWithoutNullStreams, how: string): void {
    if (proc !== this.proc) return;
    this.proc = undefined;
    const p = this.inflight;
    if (!p) return;
    this.settle();
    const detail = this.stderrTail.trim().split('\n').slice(-3).join(' | ');
    if (p.attempts < 2 && !this.closing) {
      this.queue.unshift(p); // once more, on a fresh helper
    } else if (p.attempts >= 2) {
      p.reject(new AnalysisResourceError(`the analysis helper died twice on this program (${how})${suffix(detail)}`));
    } else {
      p.reject(new AnalysisHelperError(`the analysis helper ${how}${suffix(detail)}`));
    }
    this.pump();
  }

  private fail(err: Error): void {
    const p = this.settle();
    this.kill();
    p?.reject(err);
    this.pump();
  }

  private settle(): Pending | undefined {
    const p = this.inflight;
    this.inflight = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return p;
  }

  private kill(): void {
    const proc = this.proc;
    this.proc = undefined;
    proc?.kill('SIGKILL');
  }
}

function suffix(detail: string): string {
  return detail ? `: ${detail.slice(0, 500)}` : '';
}

function wellFormed(text: string): string {
  const s = text as string & { toWellFormed?: () => string };
  return typeof s.toWellFormed === 'function' ? s.toWellFormed() : text;
}
