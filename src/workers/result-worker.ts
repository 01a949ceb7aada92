import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Processor } from 'bullmq';
import type { Logger } from '../logger.js';
import { type PythonExecutionResponse, ResultJob, responseViews } from '../queues/result.js';
import { readKernelOutputs, writeJson } from '../store/execution-folder.js';
import { buildNotebook } from '../store/notebook.js';
import type { EndResult } from '../store/request-store.js';
import { type StageDeps, stageProcessor, withTiming } from './stage-runtime.js';

/**
 * The notebook's address in JupyterLab: `base` (the execution root there) plus the notebook's path
 * under the execution root, each segment escaped. Null without a base, or for a path outside the root.
 */
export function notebookLink(base: string | undefined, root: string, notebookPath: string | null): string | null {
  if (!base || !notebookPath) return null;
  const rel = path.relative(path.resolve(root), path.resolve(notebookPath));
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  return `${base.replace(/\/+$/, '')}/${rel.split(path.sep).map(encodeURIComponent).join('/')}`;
}

/** Builds the producer's response from the final envelope. */
export function buildResponse(
  env: ResultJob,
  notebookPath: string | null,
  link: { notebookBaseUrl?: string | undefined; executionRoot: string } = { executionRoot: '' },
): PythonExecutionResponse {
  const ex = env.execution;
  const succeeded = env.outcome.status === 'succeeded';
  const notebook_link = notebookLink(link.notebookBaseUrl, link.executionRoot, notebookPath);
  const figures = ex?.figures ?? [];
  return {
    request_id: env.requestId,
    thread_id: env.threadId,
    status: env.outcome.status,
    reason: env.outcome.reason ?? null,
    detail: env.outcome.detail ?? null,
    results: succeeded ? (ex?.results ?? null) : null,
    execution_stdout: ex?.stdout ?? '',
    execution_stderr: ex?.stderr ?? '',
    execution_time_seconds: ex ? ex.durationMs / 1000 : null,
    execution_folder: env.executionFolder,
    execution_method: env.executionMethod,
    execution_mode: env.analysis?.mode ?? null,
    notebook_path: notebookPath,
    notebook_link,
    figure_paths: figures,
    figure_count: figures.length,
    execution_result:
      succeeded && ex
        ? {
            results: ex.results ?? null,
            execution_stdout: ex.stdout,
            execution_time_seconds: ex.durationMs / 1000,
            execution_folder: env.executionFolder,
            notebook_path: notebookPath,
            notebook_link,
            figure_paths: figures,
            figure_count: figures.length,
          }
        : null,
    generated_code: env.code ?? null,
    generation_attempt: env.attempt,
    error_chain: env.errorChain.map(responseViews.error),
    analysis: env.analysis ? responseViews.analysis(env.analysis) : null,
    approval: env.approval ? responseViews.approval(env.approval) : null,
    timings: env.timings.map(responseViews.timing),
    finished_at: Date.now(),
  };
}

/** Writes the request's notebook (nbformat v4, with the code's outputs); returns its path. */
async function writeNotebook(final: ResultJob): Promise<string> {
  const ex = final.execution;
  const lastCodeError = [...final.errorChain].reverse().find((e) => e.stage === 'execution');
  const kernelOutputs = await readKernelOutputs(final.executionFolder);
  const notebook = await buildNotebook(final.executionFolder, {
    title: `pyexec: ${final.request.task_objective.slice(0, 120)}`,
    status: final.outcome.status,
    summary: [
      `**Request:** ${final.requestId} (thread ${final.threadId})`,
      `**User query:** ${final.request.user_query}`,
      `**Attempts:** ${final.attempt}`,
      ...(final.analysis ? [`**Mode:** ${final.analysis.mode}, risk ${final.analysis.risk}`] : []),
      ...(final.approval ? [`**Approval:** ${final.approval.decision} by ${final.approval.approver}`] : []),
      ...(final.outcome.reason ? [`**Reason:** ${final.outcome.reason}`] : []),
    ],
    code: final.code ?? null,
    stdout: ex?.stdout ?? '',
    stderr: ex?.stderr ?? '',
    figures: ex?.figures ?? [],
    results: ex?.results,
    ...(kernelOutputs ? { kernelOutputs } : {}),
    error:
      final.outcome.status !== 'succeeded' && lastCodeError
        ? { name: lastCodeError.errorType, message: lastCodeError.message, traceback: lastCodeError.traceback ?? '' }
        : undefined,
  });
  const notebookPath = path.join(final.executionFolder, 'notebook.ipynb');
  await writeFile(notebookPath, `${JSON.stringify(notebook, null, 1)}\n`, 'utf8');
  return notebookPath;
}

/**
 * Records the end of a request: the files in its execution folder (notebook, response.json), then
 * the terminal state, response and `finished` event in one atomic step (RequestStore.end). The
 * result stage runs it for every request; the reaper runs it without the files for a result job
 * that failed as often as it may be requeued. Files are best effort (a full disk does not keep a
 * request from ending); the record is not, and is idempotent: a repeat ends nothing twice.
 */
export async function recordEnd(
  deps: StageDeps,
  final: ResultJob,
  log: Logger,
  options: { files?: boolean } = {},
): Promise<EndResult> {
  let notebookPath: string | null = null;
  if (options.files !== false) {
    try {
      if (final.code) notebookPath = await writeNotebook(final);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'notebook not written');
    }
  }
  const response = buildResponse(final, notebookPath, {
    notebookBaseUrl: deps.config.execution.container.notebook_base_url,
    executionRoot: deps.config.pyexec.execution_root,
  });
  if (options.files !== false) {
    await writeJson(final.executionFolder, 'response.json', response).catch((err) =>
      log.warn({ err: (err as Error).message }, 'response.json not written'),
    );
  }
  const recorded = await deps.store.end(
    final.requestId,
    final.outcome.status,
    response,
    deps.config.pyexec.retention.finished_seconds,
  );
  if (recorded === 'recorded') deps.metrics.terminal.inc({ status: final.outcome.status });
  else log.info({ recorded }, 'request already ended (or gone); nothing recorded');
  deps.fault?.('result:ended');
  return recorded;
}

/** Result: records the end of the request where the producer reads it (recordEnd). */
export function createResultProcessor(deps: StageDeps): Processor {
  return stageProcessor(deps, 'result', ResultJob, async ({ env, startedAt, log }) => {
    const final = {
      ...withTiming(env, 'result', startedAt, env.outcome.status),
      outcome: env.outcome,
    } as ResultJob;
    await recordEnd(deps, final, log);
    return final.outcome.status;
  });
}
