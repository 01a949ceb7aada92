import type { ExecutionOutcome } from './executor.js';

/** The record pyexec_runtime writes about a run (runner.py's metadata, kernel_session's run record). */
export interface RuntimeRecord {
  success: boolean;
  error_kind?: 'code' | 'refused' | 'input';
  error_type?: string;
  error_name?: string;
  error?: string;
  traceback?: string;
  results_missing?: boolean;
  results_save_error?: string;
  figures?: string[];
}

/** What every outcome of a run carries besides its verdict. */
export interface RunOutput {
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

/** The code ran but never assigned `results`: a code error (the request is regenerated). */
export function missingResults(out: RunOutput): ExecutionOutcome {
  return {
    status: 'code_error',
    errorType: 'missing_results',
    errorName: 'MissingResults',
    message:
      "Code executed successfully but did not create the required 'results' dictionary. Assign a dictionary to `results`, e.g. results = {'key': value}",
    traceback: '',
    ...out,
  };
}

/** `results` could not be turned into JSON: a code error. */
export function unserializableResults(reason: string, out: RunOutput): ExecutionOutcome {
  return {
    status: 'code_error',
    errorType: 'results_serialization',
    errorName: 'ResultsSerializationError',
    message: `results could not be saved as JSON: ${reason}`,
    traceback: '',
    ...out,
  };
}
