import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Config, type ConfigInput, parseConfig } from '../../src/config.js';
import type { ErrorFeedback, GenerationRequest } from '../../src/generators/index.js';
import { PythonExecutionRequest, type PythonExecutionRequestInput } from '../../src/request.js';

/** Shared helpers of the generator tests (not a test file). */

/** A key no file or message may ever contain. */
export const SECRET_KEY = 'sk-test-SECRET-0123456789';

export function makeConfig(input: ConfigInput): Config {
  return parseConfig(input, {});
}

export const BASE_REQUEST: PythonExecutionRequestInput = {
  user_query: 'What is the average beam current over the last hour?',
  task_objective: 'Compute the mean of the beam current samples',
  expected_results: { mean_current_ma: 'float, mA' },
  capability_prompts: ['CONTEXT ACCESS DESCRIPTION: samples are under context.beam.samples'],
  execution_folder_name: 'beam_mean',
  capability_context_data: { beam: { samples: [1.5, 2.5], unit: 'mA', secret_value: 'do-not-leak-4242' } },
};

export function makeRequest(
  overrides: {
    errorChain?: ErrorFeedback[];
    attempt?: number;
    executionFolder?: string;
  } & Partial<PythonExecutionRequestInput> = {},
): GenerationRequest {
  const { errorChain = [], attempt, executionFolder = '', ...fields } = overrides;
  return {
    requestId: '00000000-0000-4000-8000-000000000001',
    request: PythonExecutionRequest.parse({ ...BASE_REQUEST, ...fields }),
    errorChain,
    attempt: attempt ?? errorChain.length + 1,
    executionFolder,
  };
}

export function runtimeError(attempt: number, message = "NameError: name 'mean' is not defined"): ErrorFeedback {
  return {
    stage: 'execution',
    errorType: 'runtime',
    message,
    traceback: `Traceback (most recent call last):\n${'  File "<cell>", line 3, in <module>\n'.repeat(60)}${message}`,
    failedCode: `values = context.beam.samples\nresults = {'mean': mean(values)}  # attempt ${attempt}`,
    issues: [],
    attempt,
  };
}

export async function tempFolder(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pyexec-gen-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Every file under a folder, relative path → content. */
export async function readTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    out[path.relative(root, full)] = await readFile(full, 'utf8');
  }
  return out;
}

export const never = new AbortController().signal;
