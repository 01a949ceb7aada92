import { z } from 'zod';
import type { CodeGenerator, GeneratedCode, GenerationRequest } from './code-generator.js';

/**
 * The `hybrid` generator, the reference's example: a fast generator for the first attempt, a quality
 * generator once the error chain is non-empty (the first retry after a code error). Infrastructure
 * retries do not grow the chain, so they stay with the generator that was interrupted.
 * The result names the inner generator that wrote the code (`generator`), so metrics show which.
 */

/** `execution.generators.hybrid`: names of two other generators, each configured under its own key. */
export const HybridSettings = z.strictObject({
  /** @defaultValue "basic" */
  fast: z.string().min(1).default('basic'),
  /** @defaultValue "claude_code" */
  quality: z.string().min(1).default('claude_code'),
});
export type HybridSettings = z.output<typeof HybridSettings>;

export class HybridGenerator implements CodeGenerator {
  readonly name: string;

  constructor(
    readonly fast: CodeGenerator,
    readonly quality: CodeGenerator,
    name = 'hybrid',
  ) {
    this.name = name;
  }

  /** Which inner generator serves this request. */
  pick(request: GenerationRequest): CodeGenerator {
    return request.errorChain.length === 0 ? this.fast : this.quality;
  }

  async generate(request: GenerationRequest, signal: AbortSignal): Promise<GeneratedCode> {
    const inner = this.pick(request);
    const result = await inner.generate(request, signal);
    return {
      ...result,
      generator: result.generator ?? inner.name,
      metadata: { ...result.metadata, hybrid: { role: inner === this.fast ? 'fast' : 'quality' } },
    };
  }
}
