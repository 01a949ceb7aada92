import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KernelConnection } from '@jupyterlab/services';
import { ExecutorUnavailableError, RequestInputError } from '../errors.js';
import { writeKernelOutputs } from '../store/execution-folder.js';
import { endSpan, inSpan, SPAN, startSpan } from '../telemetry/tracing.js';
import type { ExecutionOutcome, ExecutionTask, Executor } from './executor.js';
import type { KernelLease, KernelPool } from './kernel-pool.js';
import { type CellResult, type NotebookOutput, type RunCellOptions, runCell } from './kernel-run.js';
import { missingResults, type RuntimeRecord, unserializableResults } from './outcomes.js';

/** The limits database as the kernels receive it (control_system.limits_checking, loaded). */
export interface KernelLimits {
  readonly database: Record<string, unknown>;
  readonly allow_unlisted: boolean;
  readonly on_violation: 'error' | 'skip';
}

export interface JupyterExecutorOptions {
  readonly pool: KernelPool;
  /** Characters kept per output stream. @defaultValue 1000000 */
  readonly maxOutputBytes?: number;
  /** After a timeout's interrupt, how long the kernel has to come back idle. @defaultValue 3000 */
  readonly interruptGraceMs?: number;
  readonly limits?: KernelLimits | null;
  /** The confinement every kernel must report before it gets the code (config
   * `execution.confinement`); a kernel that reports another is refused. @defaultValue "landlock" */
  readonly confinement?: 'landlock' | 'deployment';
}

/** The run record `kernel_session.finish()` publishes (application/vnd.pyexec.run+json). */
interface RunRecord extends RuntimeRecord {
  results_json?: string | null;
  refusals?: unknown[];
  limits_skipped?: unknown[];
}

const RUN_MIME = 'application/vnd.pyexec.run+json';
const SETUP_MS = 30_000;

/**
 * The `container` method: the code runs in a leased kernel of the pool, as one notebook cell,
 * between two silent cells of pyexec_runtime.kernel_session (set-up; results, figures and the
 * classification of the outcome). Everything comes back over the websocket, and the outcome is
 * written into the execution folder as the local method does (results.json, figures/,
 * execution_metadata.json, plus kernel_outputs.json: the cell's nbformat outputs).
 *
 * Infrastructure failures throw ExecutorUnavailableError: `started: false` while the code cannot
 * have run (no kernel free, set-up failed), `started: true` once it may have (the kernel died).
 */
export class JupyterExecutor implements Executor {
  readonly method = 'container' as const;
  constructor(private readonly options: JupyterExecutorOptions) {}

  async execute(task: ExecutionTask, signal: AbortSignal): Promise<ExecutionOutcome> {
    const started = Date.now();
    const lease = await inSpan(SPAN.kernelLease, { 'pyexec.mode': task.mode }, async (span) => {
      const leased = await this.options.pool.acquire(task.mode, signal);
      span.setAttributes({ 'pyexec.kernel.id': leased.kernelId, 'pyexec.kernel.server': leased.server.name });
      return leased;
    });
    const traced = startSpan(SPAN.kernelRun, {
      'pyexec.mode': task.mode,
      'pyexec.kernel.id': lease.kernelId,
      'pyexec.kernel.server': lease.server.name,
    });
    let failure: unknown;
    let kernel: KernelConnection | undefined;
    try {
      const run = AbortSignal.any([signal, lease.lost]);
      try {
        kernel = await lease.connect();
      } catch (err) {
        throw new ExecutorUnavailableError(
          `cannot connect to kernel ${lease.kernelId} on ${lease.server.name}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      const cell = (
        code: string,
        silent: boolean,
        timeoutMs: number,
        recordMime?: string,
        more: Pick<RunCellOptions, 'stopOnError' | 'startsAfter'> = {},
      ) =>
        runCell(kernel!, code, {
          // Live output of the code's own cell only (not of the silent set-up and finish cells).
          onOutput: silent ? undefined : task.onOutput,
          timeoutMs,
          signal: run,
          silent,
          maxOutputChars: this.options.maxOutputBytes ?? 1_000_000,
          interruptGraceMs: this.options.interruptGraceMs ?? 3000,
          interrupt: () => lease.server.interruptKernel(lease.kernelId),
          ...(recordMime ? { recordMime } : {}),
          ...more,
        });
      const spec = {
        mode: task.mode,
        folder: path.resolve(task.executionFolder),
        context: task.request.capability_context_data ?? {},
        approval_payload: task.approvalPayload ?? null,
        limits: task.mode === 'write_access' ? (this.options.limits ?? null) : null,
        confinement: this.options.confinement ?? 'landlock',
      };
      // One round trip: the set-up, the code and the finish go out together, and the kernel runs
      // them in order. A failed set-up aborts the queue (stop_on_error), and the kernel's gate
      // (kernel_session._gate) refuses the code whatever comes through; the code's own error does
      // not stop the finish, which reports it.
      const beginning = cell(
        `import pyexec_runtime.kernel_session as _pyexec_s; _pyexec_s.begin(${JSON.stringify(JSON.stringify(spec))}); del _pyexec_s`,
        true,
        SETUP_MS,
      );
      const running = cell(task.code, false, task.timeoutMs, undefined, { stopOnError: false, startsAfter: beginning });
      const finishing = cell(
        'import pyexec_runtime.kernel_session as _pyexec_s; _pyexec_s.finish(); del _pyexec_s',
        true,
        SETUP_MS,
        RUN_MIME,
        { startsAfter: running },
      );
      // Whatever happens below, no promise is left to reject unheard.
      void finishing.catch(() => {});
      const begin = await beginning;
      this.throwIfCancelled(signal, begin);
      // The request's data that the kernel cannot decode is the request's error, not the kernel's.
      if (begin.error?.ename === 'RequestInputError') throw new RequestInputError(begin.error.evalue);
      // A kernel that died before its set-up reply left may still have run the code (the code went
      // out with the set-up, and a reply queued in ZeroMQ dies with the process): started.
      if (begin.status === 'died') {
        throw new ExecutorUnavailableError(
          `kernel ${lease.kernelId} on ${lease.server.name} died while running the code (or its set-up; no reply)`,
          { started: true, cause: run.reason },
        );
      }
      if (begin.status !== 'ok') {
        throw new ExecutorUnavailableError(
          `kernel set-up failed (${begin.status}): ${begin.error ? `${begin.error.ename}: ${begin.error.evalue}` : 'no reply'}`,
        );
      }
      const main = await running;
      this.throwIfCancelled(signal, main);
      if (main.status === 'died' || main.status === 'aborted') {
        throw new ExecutorUnavailableError(
          `kernel ${lease.kernelId} on ${lease.server.name} died while running the code`,
          { started: true, cause: run.reason },
        );
      }
      if (main.status === 'timeout') {
        await this.writeFiles(task.executionFolder, main, null, []);
        return {
          status: 'code_error',
          errorType: 'timeout',
          errorName: 'TimeoutError',
          message: `Python execution timed out after ${task.timeoutMs / 1000} seconds (kernel interrupted${main.interrupted ? '' : ', then restarted'})`,
          traceback: '',
          stdout: main.stdout,
          stderr: main.stderr,
          durationMs: Date.now() - started,
        };
      }
      const finish = await finishing;
      this.throwIfCancelled(signal, finish);
      const record = finish.records[0] as RunRecord | undefined;
      if (finish.status !== 'ok' || !record) {
        throw new ExecutorUnavailableError(`kernel ${lease.kernelId} did not report the run (${finish.status})`, {
          started: true,
        });
      }
      const figures = await this.writeFiles(task.executionFolder, main, record, record.figures ?? []);
      const outcome = this.outcome(lease, main, record, figures, Date.now() - started);
      traced.setAttribute('pyexec.outcome', outcome.status);
      return outcome;
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      kernel?.dispose();
      await lease.release().catch(() => {});
      endSpan(traced, failure);
    }
  }

  private throwIfCancelled(signal: AbortSignal, cell: CellResult): void {
    if (signal.aborted && cell.status === 'aborted')
      throw signal.reason instanceof Error ? signal.reason : new Error('execution cancelled');
  }

  /** results.json, figures/figure_NN.png (displayed images, then open figures), metadata, outputs. */
  private async writeFiles(
    folder: string,
    main: CellResult,
    record: RunRecord | null,
    openFigures: string[],
  ): Promise<string[]> {
    await mkdir(path.join(folder, 'figures'), { recursive: true });
    const displayed = main.outputs.flatMap((o) =>
      (o.output_type === 'display_data' || o.output_type === 'execute_result') &&
      typeof o.data['image/png'] === 'string'
        ? [o.data['image/png'] as string]
        : [],
    );
    const figures: string[] = [];
    for (const b64 of [...displayed, ...openFigures]) {
      const file = path.join(folder, 'figures', `figure_${String(figures.length + 1).padStart(2, '0')}.png`);
      await writeFile(file, Buffer.from(b64, 'base64'));
      figures.push(file);
    }
    if (record?.results_json) await writeFile(path.join(folder, 'results.json'), record.results_json, 'utf8');
    const { results_json: _r, figures: _f, ...meta } = record ?? { success: false, error_type: 'timeout' };
    await writeFile(
      path.join(folder, 'execution_metadata.json'),
      JSON.stringify({ ...meta, figures, execution_method: 'container' }),
      'utf8',
    );
    const outputs: NotebookOutput[] = main.outputs;
    await writeKernelOutputs(folder, main.executionCount, outputs);
    return figures;
  }

  private outcome(
    lease: KernelLease,
    main: CellResult,
    record: RunRecord,
    figures: string[],
    durationMs: number,
  ): ExecutionOutcome {
    const { stdout, stderr } = main;
    if (record.error_kind === 'refused') {
      return {
        status: 'refused',
        errorType: record.error_type ?? 'refused',
        message: record.error ?? 'refused',
        stdout,
        stderr,
        durationMs,
      };
    }
    if (!record.success || main.status === 'error') {
      const name = record.error_name ?? main.error?.ename ?? 'Error';
      const message = record.error ?? main.error?.evalue ?? '';
      return {
        status: 'code_error',
        errorType: record.error_type ?? 'runtime',
        errorName: name,
        message: `${name}: ${message}`,
        traceback: main.error?.traceback.join('\n') ?? record.traceback ?? '',
        stdout,
        stderr,
        durationMs,
      };
    }
    if (record.results_missing) return missingResults({ stdout, stderr, durationMs });
    if (record.results_save_error || !record.results_json)
      return unserializableResults(record.results_save_error ?? 'no results', { stdout, stderr, durationMs });
    return {
      status: 'ok',
      results: JSON.parse(record.results_json) as unknown,
      stdout,
      stderr,
      figures,
      durationMs,
      kernel: `${lease.server.name}/${lease.kernelId}`,
    };
  }
}
