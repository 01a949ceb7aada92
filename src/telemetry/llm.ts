import type { Attributes, Span } from '@opentelemetry/api';
import { inSpan, SpanKind } from './tracing.js';

/**
 * An LLM call as a child span of the generation stage, named and attributed after the OpenTelemetry
 * GenAI semantic conventions (`chat <model>`, `gen_ai.*`; the names are written out here because
 * they are still in the conventions' incubating set). Prompts, replies and SDK error messages are
 * never recorded.
 */
export interface LlmCall {
  /** `openai` (any OpenAI-compatible server) or `anthropic`. */
  readonly provider: 'openai' | 'anthropic';
  readonly model: string;
  /** The endpoint's host, when known. */
  readonly serverAddress?: string | undefined;
  /** Which pyexec generator makes the call (and, for Claude, which phase). */
  readonly generator: string;
  readonly phase?: string;
}

export interface LlmResult {
  readonly inputTokens?: number | undefined;
  readonly outputTokens?: number | undefined;
  readonly responseModel?: string | undefined;
  readonly finishReason?: string | null | undefined;
}

export function inLlmSpan<T>(call: LlmCall, work: (done: (result: LlmResult) => void) => Promise<T>): Promise<T> {
  const attributes: Attributes = {
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': call.provider,
    'gen_ai.request.model': call.model,
    'pyexec.generator': call.generator,
  };
  if (call.serverAddress) attributes['server.address'] = call.serverAddress;
  if (call.phase) attributes['pyexec.generator.phase'] = call.phase;
  // An SDK error's message may echo what was sent (a key, a prompt): only its class is recorded.
  return inSpan(`chat ${call.model}`, attributes, (span) => work((r) => recordResult(span, r)), SpanKind.CLIENT, false);
}

function recordResult(span: Span, r: LlmResult): void {
  if (!span.isRecording()) return;
  if (r.inputTokens !== undefined) span.setAttribute('gen_ai.usage.input_tokens', r.inputTokens);
  if (r.outputTokens !== undefined) span.setAttribute('gen_ai.usage.output_tokens', r.outputTokens);
  if (r.responseModel) span.setAttribute('gen_ai.response.model', r.responseModel);
  if (r.finishReason) span.setAttribute('gen_ai.response.finish_reasons', [r.finishReason]);
}

/** The host of a base URL, for `server.address` (undefined when it does not parse). */
export function hostOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    return new URL(url).hostname || undefined;
  } catch {
    return undefined;
  }
}
