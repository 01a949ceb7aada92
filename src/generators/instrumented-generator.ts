import { errorKind } from '../errors.js';
import type { CodeGenerator, GeneratedCode, GenerationRequest } from './code-generator.js';

/**
 * Token usage and generation time per generator, as metrics. Wraps any generator; the composition
 * root passes the fleet's prom-client metrics (`Metrics.generatorTokens`, `Metrics.generatorDuration`):
 * ```ts
 * const generator = instrumentGenerator(await createCodeGenerator(config), {
 *   tokens: metrics.generatorTokens, duration: metrics.generatorDuration });
 * ```
 * The `generator` label is the one that wrote the code (a hybrid's inner generator); on failure it
 * is the wrapped generator's name and `outcome` is the error kind (code, infrastructure, configuration).
 */

/** The prom-client Counter shape used: labels `generator`, `direction` (input | output). */
export interface TokenCounter {
  inc(labels: { generator: string; direction: 'input' | 'output' }, value: number): void;
}

/** The prom-client Histogram shape used: labels `generator`, `outcome`; seconds. */
export interface DurationHistogram {
  observe(labels: { generator: string; outcome: string }, seconds: number): void;
}

export interface GeneratorMetrics {
  tokens: TokenCounter;
  duration: DurationHistogram;
}

export function instrumentGenerator(generator: CodeGenerator, metrics: GeneratorMetrics): CodeGenerator {
  return {
    name: generator.name,
    async generate(request: GenerationRequest, signal: AbortSignal): Promise<GeneratedCode> {
      const started = performance.now();
      try {
        const result = await generator.generate(request, signal);
        const label = result.generator ?? generator.name;
        const ms = result.durationMs ?? performance.now() - started;
        metrics.duration.observe({ generator: label, outcome: 'success' }, ms / 1000);
        if (result.usage) {
          metrics.tokens.inc({ generator: label, direction: 'input' }, result.usage.inputTokens);
          metrics.tokens.inc({ generator: label, direction: 'output' }, result.usage.outputTokens);
        }
        return result;
      } catch (err) {
        metrics.duration.observe(
          { generator: generator.name, outcome: errorKind(err) },
          (performance.now() - started) / 1000,
        );
        throw err;
      }
    },
  };
}
