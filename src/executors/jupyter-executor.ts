import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { KernelConnection } from '@jupyterlab/services';
import { ExecutorUnavailableError, RequestInputError } from '../errors.js';
import { writeKernelOutputs } from '../store/execution-folder.js';
import { endSpan, inSpan, SPAN, startSpan } from '../telemetry/tracing.js';
import type { ExecutionOutcome, ExecutionTask, Executor } from './executor.js';
import type { KernelLease, KernelPool } from './kernel-pool.js';
import { type CellResult, type NotebookOutput, runCell } from './kernel-run.js';
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
  /** The run's set-up failed (wrong mode or confinement, undecodable request data): nothing ran. */
  setup_error?: { ename: string; evalue: string };
  limits_skipped?: unknown[];
}

const RUN_MIME = 'application/vnd.pyexec.run+json';
/** The execute request's metadata key of the run spec (kernel_session.RUN_SPEC_KEY). */
const RUN_SPEC_KEY = 'pyexec_run';

/**
 * The `container` method: the code runs in a leased kernel of the pool, as one notebook cell, in
 * one execute request whose metadata carries the run's spec: the kernel (pyexec_runtime.kernel_session)
 * sets the run up before the code and, after it, publishes the run record (results, figures and
 * the classification of the outcome) in the same request. Everything comes back over the websocket, and the outcome is
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
    // The kernel is done with once its cell has ended: the lease goes back (and the pool's
    // replacement starts) while the run's files are written.
    let ending: Promise<void> | undefined;
    const end = () => {
      ending ??= (async () => {
        kernel?.dispose();
        await lease.release().catch(() => {});
      })();
      return ending;
    };
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
      const spec = {
        mode: task.mode,
        folder: path.resolve(task.executionFolder),
        context: task.request.capability_context_data ?? {},
        approval_payload: task.approvalPayload ?? null,
        limits: task.mode === 'write_access' ? (this.options.limits ?? null) : null,
        confinement: this.options.confinement ?? 'landlock',
      };
      // One round trip: the code is the request's one cell, and its run spec travels in the
      // request's metadata. The kernel (kernel_session._gate) sets the run up before the code and
      // finishes it after, in the same request; a set-up that fails is reported in the run record
      // and the code is refused, whatever it says. Live output is the code's own.
      const main = await runCell(kernel, task.code, {
        onOutput: task.onOutput,
        timeoutMs: task.timeoutMs,
        signal: run,
        silent: false,
        maxOutputChars: this.options.maxOutputBytes ?? 1_000_000,
        interruptGraceMs: this.options.interruptGraceMs ?? 3000,
        interrupt: () => lease.server.interruptKernel(lease.kernelId),
        recordMime: RUN_MIME,
        stopOnError: false,
        metadata: { [RUN_SPEC_KEY]: JSON.stringify(spec) },
      });
      void end();
      this.throwIfCancelled(signal, main);
      const record = main.records[0] as RunRecord | undefined;
      const setup = record?.setup_error;
      if (setup) {
        // The request's data that the kernel cannot decode is the request's error, not the kernel's.
        if (setup.ename === 'RequestInputError') throw new RequestInputError(setup.evalue);
        throw new ExecutorUnavailableError(`kernel set-up failed: ${setup.ename}: ${setup.evalue}`);
      }
      if (main.status === 'died' || main.status === 'aborted') {
        // The code went out with its set-up, and a reply queued in ZeroMQ dies with the process:
        // it may have run (started).
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
      if (!record) {
        throw new ExecutorUnavailableError(`kernel ${lease.kernelId} did not report the run (${main.status})`, {
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
      await end();
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
    const pngs = [...displayed, ...openFigures];
    const figures = pngs.map((_, i) => path.join(folder, 'figures', `figure_${String(i + 1).padStart(2, '0')}.png`));
    const { results_json: _r, figures: _f, ...meta } = record ?? { success: false, error_type: 'timeout' };
    const outputs: NotebookOutput[] = main.outputs;
    // Side by side: the result stage reads them only after this returns.
    await Promise.all([
      ...pngs.map((b64, i) => writeFile(figures[i]!, Buffer.from(b64, 'base64'))),
      record?.results_json ? writeFile(path.join(folder, 'results.json'), record.results_json, 'utf8') : undefined,
      writeFile(
        path.join(folder, 'execution_metadata.json'),
        JSON.stringify({ ...meta, figures, execution_method: 'container' }),
        'utf8',
      ),
      writeKernelOutputs(folder, main.executionCount, outputs),
    ]);
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
