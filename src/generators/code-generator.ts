import type { PythonExecutionRequest } from '../request.js';

/** One earlier failure, as the generator sees it (error-aware regeneration). */
export interface ErrorFeedback {
  readonly stage: string;
  /** generation | syntax | analysis | runtime | missing_results | timeout | ... */
  readonly errorType: string;
  readonly message: string;
  readonly traceback?: string | undefined;
  readonly failedCode?: string | undefined;
  readonly issues: readonly string[];
  readonly attempt: number;
}

/** What a generator is asked: Osprey's `generate_code(request, error_chain)`, plus where to save prompts. */
export interface GenerationRequest {
  readonly requestId: string;
  readonly request: PythonExecutionRequest;
  /** Earlier failures of this request, oldest first; empty on the first attempt. */
  readonly errorChain: readonly ErrorFeedback[];
  /** Round through generation, from 1. */
  readonly attempt: number;
  /** The request's execution folder; generators may save prompts under `prompts/`. */
  readonly executionFolder: string;
}

export interface TokenUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

export interface GeneratedCode {
  readonly code: string;
  /** Which generator produced it (a hybrid names the inner one). */
  readonly generator?: string;
  /** Tokens of all LLM calls that made this code, summed. */
  readonly usage?: TokenUsage;
  /** Wall time of the whole generation, all calls and SDK retries included. */
  readonly durationMs?: number;
  /** The model that wrote the code, as the provider named it. */
  readonly model?: string;
  readonly metadata?: Record<string, unknown>;
}

/** What generators log through (a pino logger fits). Prompts, replies and keys are never logged. */
export interface GeneratorLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * The generator plug-in point. Throw CodeGenerationError when the model gave no usable code,
 * GeneratorUnavailableError for rate limits / timeouts / 5xx, GeneratorConfigError for bad
 * credentials or a missing model.
 */
export interface CodeGenerator {
  readonly name: string;
  generate(request: GenerationRequest, signal: AbortSignal): Promise<GeneratedCode>;
}
