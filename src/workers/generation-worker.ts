import type { Processor } from 'bullmq';
import type { Config } from '../config.js';
import { CodeGenerationError, errorKind } from '../errors.js';
import type { CodeGenerator } from '../generators/code-generator.js';
import type { Envelope } from '../queues/envelope.js';
import { GenerationJob } from '../queues/generation.js';
import { executionFolderFor, writeJson } from '../store/execution-folder.js';
import {
  endRequest,
  handoff,
  regenerateOrFail,
  type StageDeps,
  sha256,
  stageProcessor,
  withError,
  withTiming,
} from './stage-runtime.js';

/**
 * Generation: asks the configured generator for code, feeding back the error chain. A generator
 * that produced no usable code is a code error (counts against max_generation_retries); rate
 * limits and timeouts are infrastructure errors (same stage, backoff); bad credentials end the
 * request.
 */
export function createGenerationProcessor(deps: StageDeps & { generator: CodeGenerator }): Processor {
  const schema = GenerationJob.transform((job) => placed(job, deps.config));
  return stageProcessor(deps, 'generation', schema, async (run) => {
    const { env, log, startedAt, signal } = run;
    const method = env.request.execution_method;
    if (method && method !== deps.config.execution.execution_method && !deps.config.execution.allow_method_override) {
      return endRequest(
        deps,
        run,
        {
          status: 'failed',
          reason: `execution_method '${method}' requested, but this service runs '${deps.config.execution.execution_method}' and does not allow overrides (execution.allow_method_override)`,
          detail: 'invalid_request',
        },
        { label: 'refused' },
      );
    }
    const t0 = Date.now();
    let generated: Awaited<ReturnType<CodeGenerator['generate']>>;
    try {
      generated = await deps.generator.generate(
        {
          requestId: env.requestId,
          request: env.request,
          errorChain: env.errorChain,
          attempt: env.attempt,
          executionFolder: env.executionFolder,
        },
        signal,
      );
      if (!generated.code.trim()) throw new CodeGenerationError('the generator returned empty code');
    } catch (err) {
      deps.metrics.generatorDuration.observe(
        { generator: deps.generator.name, outcome: errorKind(err) },
        (Date.now() - t0) / 1000,
      );
      if (!(err instanceof CodeGenerationError)) throw err;
      log.info({ err: err.message }, 'generation produced no usable code');
      const failed = withTiming(
        withError(env, { stage: 'generation', errorType: 'generation', kind: 'code', message: err.message }),
        'generation',
        startedAt,
        'code_error',
      );
      return regenerateOrFail(deps, failed, 'generation', 'generation');
    }
    const generator = generated.generator ?? deps.generator.name;
    deps.metrics.generatorDuration.observe({ generator, outcome: 'ok' }, (Date.now() - t0) / 1000);
    if (generated.usage) {
      deps.metrics.generatorTokens.inc({ generator, direction: 'input' }, generated.usage.inputTokens);
      deps.metrics.generatorTokens.inc({ generator, direction: 'output' }, generated.usage.outputTokens);
    }
    const code = generated.code;
    await writeJson(env.executionFolder, `attempts/${String(env.attempt).padStart(2, '0')}_generated.json`, {
      attempt: env.attempt,
      generator,
      code,
      metadata: generated.metadata ?? {},
    });
    const next = withTiming({ ...env, code, codeSha256: sha256(code), generator }, 'generation', startedAt, 'ok');
    await handoff(deps, 'analysis', next);
    return 'ok';
  });
}

/**
 * The execution method and folder of a job whose producer left them out (it does not know the
 * fleet's config). The folder's name comes from the submission time, so every retry of this job
 * names the same folder. The reaper places a failed generation job the same way before it ends
 * the request.
 */
export function placed(job: GenerationJob, config: Config): Envelope {
  return {
    ...job,
    executionMethod: job.executionMethod ?? job.request.execution_method ?? config.execution.execution_method,
    executionFolder:
      job.executionFolder ??
      executionFolderFor(
        config.pyexec.execution_root,
        job.request.execution_folder_name,
        job.requestId,
        new Date(job.submittedAt),
      ),
  };
}
