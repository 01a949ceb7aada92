import type { ExecutionMethod, ExecutionMode } from '../modes.js';
import type { PythonExecutionRequest } from '../request.js';

export type { ExecutionMode } from '../modes.js';

/** What an executor is asked to run. */
export interface ExecutionTask {
  readonly requestId: string;
  readonly code: string;
  readonly mode: ExecutionMode;
  readonly executionFolder: string;
  readonly timeoutMs: number;
  readonly request: PythonExecutionRequest;
  /** An approver's payload, if any; visible to the code as `approval_payload`. */
  readonly approvalPayload?: Record<string, unknown> | undefined;
  /**
   * Live output: called as the code prints and displays, in order, while it runs. It must return at
   * once and never throw (the caller coalesces and bounds what it keeps); what the outcome carries
   * does not depend on it.
   */
  readonly onOutput?: ((chunk: OutputChunk) => void) | undefined;
}

/** A piece of a run's output, as it is made. */
export type OutputChunk =
  | { readonly kind: 'stdout' | 'stderr'; readonly text: string }
  | {
      readonly kind: 'display';
      /** The MIME bundle (`image/png` as base64, `text/plain`, ...). */
      readonly data: Record<string, unknown>;
      readonly metadata: Record<string, unknown>;
    };

/**
 * The outcome of a run, as data. `code_error` sends the request back to generation; `refused` is a
 * safety refusal (terminal). Infrastructure failures are thrown as ExecutorUnavailableError instead.
 */
export type ExecutionOutcome =
  | {
      readonly status: 'ok';
      readonly results: unknown;
      readonly stdout: string;
      readonly stderr: string;
      readonly figures: readonly string[];
      readonly durationMs: number;
      readonly kernel?: string;
    }
  | {
      readonly status: 'code_error';
      /** runtime | missing_results | timeout | results_serialization */
      readonly errorType: string;
      readonly errorName: string;
      readonly message: string;
      readonly traceback: string;
      readonly stdout: string;
      readonly stderr: string;
      readonly durationMs: number;
    }
  | {
      readonly status: 'refused';
      /** write_blocked | limits_violation | ... */
      readonly errorType: string;
      readonly message: string;
      readonly stdout: string;
      readonly stderr: string;
      readonly durationMs: number;
    };

/** The execution plug-in point. */
export interface Executor {
  readonly method: ExecutionMethod;
  execute(task: ExecutionTask, signal: AbortSignal): Promise<ExecutionOutcome>;
  close?(): Promise<void>;
}
