import OpenAI from 'openai';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { hostOf, inLlmSpan } from '../telemetry/llm.js';
import type { CodeGenerator, GeneratedCode, GenerationRequest, GeneratorLogger } from './code-generator.js';
import { extractCode } from './extract-code.js';
import { linkedSignal } from './linked-signal.js';
import { buildCodePrompt, type PromptOptions } from './prompt.js';
import { PromptRecorder } from './prompt-recorder.js';
import { type ErrorContext, noCodeError, translateSdkError } from './sdk-errors.js';
import { LlmSettings, parseSettings, readEnv, redactUrl, resolveLlmSettings } from './settings.js';

/**
 * The `basic` generator (Osprey's BasicLLMCodeGenerator): one Chat Completions call through the
 * `openai` SDK against any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp, LiteLLM…).
 * The prompt asks for bare code; fenced or prose-wrapped replies are accepted too.
 */

export interface OpenAiGeneratorOptions extends PromptOptions {
  /** The name the generator reports. @defaultValue "basic" */
  name?: string;
  model: string;
  /** Endpoint root (…/v1). Unset: the SDK's default (OPENAI_BASE_URL, else api.openai.com). */
  baseUrl?: string | undefined;
  /** Unset: a placeholder is sent (self-hosted servers often need no key). */
  apiKey?: string | undefined;
  /** Named in error messages so an operator knows what to fix. @defaultValue "OPENAI_API_KEY" */
  apiKeyEnv?: string;
  maxTokens?: number | undefined;
  temperature?: number | undefined;
  /** One HTTP call. @defaultValue 120000 */
  timeoutMs?: number;
  /** SDK retries with its backoff (429, 5xx, timeouts) before GeneratorUnavailableError. @defaultValue 2 */
  maxRetries?: number;
  /** @defaultValue true */
  savePrompts?: boolean;
  logger?: GeneratorLogger | undefined;
  /** A ready client (tests inject one with a custom fetch); the options above then only name things. */
  client?: OpenAI;
}

/** What fromConfig needs besides the config. */
export interface GeneratorBuildContext {
  env: NodeJS.ProcessEnv;
  logger?: GeneratorLogger | undefined;
}

const NO_KEY = 'no-key-set';

export class OpenAiGenerator implements CodeGenerator {
  readonly name: string;
  private readonly client: OpenAI;
  private readonly errorContext: ErrorContext;

  constructor(private readonly options: OpenAiGeneratorOptions) {
    this.name = options.name ?? 'basic';
    this.client =
      options.client ??
      new OpenAI({
        apiKey: options.apiKey ?? NO_KEY,
        baseURL: options.baseUrl,
        timeout: options.timeoutMs ?? 120_000,
        maxRetries: options.maxRetries ?? 2,
      });
    this.errorContext = {
      generator: this.name,
      endpoint: `the OpenAI-compatible endpoint ${redactUrl(this.client.baseURL)}`,
      model: options.model,
      apiKeyEnv: options.apiKeyEnv ?? 'OPENAI_API_KEY',
      timeoutMs: options.timeoutMs ?? 120_000,
      secrets: [options.apiKey],
    };
  }

  /**
   * Builds `basic` from `execution.generators.<name>` (see LlmSettings), over `models.<model_config_name>`
   * or, with neither that nor model_id, `models.python_code_generator`. Throws ConfigError naming the key.
   */
  static fromConfig(config: Config, name: string, context: GeneratorBuildContext): OpenAiGenerator {
    const key = `execution.generators.${name}`;
    const raw = parseSettings(LlmSettings, config.execution.generators[name], key);
    const s = resolveLlmSettings(config, raw, key, 'python_code_generator');
    if (!s.model_id) {
      throw new ConfigError(`${key}.model_id: required (or model_config_name naming an entry of models)`);
    }
    const apiKeyEnv = s.api_key_env ?? 'OPENAI_API_KEY';
    const apiKey = readEnv(context.env, apiKeyEnv);
    const baseUrl = s.base_url ?? readEnv(context.env, 'OPENAI_BASE_URL');
    if (!apiKey && !baseUrl) {
      throw new ConfigError(
        `${key}: no API key: the environment variable ${apiKeyEnv} is not set (set it, name another with api_key_env, or give base_url for a server that needs no key)`,
      );
    }
    return new OpenAiGenerator({
      name,
      model: s.model_id,
      baseUrl,
      apiKey,
      apiKeyEnv,
      maxTokens: s.max_tokens,
      temperature: s.temperature,
      timeoutMs: s.timeout_ms,
      maxRetries: s.max_retries,
      maxErrors: s.max_errors,
      savePrompts: s.save_prompts,
      systemRole: s.system_role,
      systemPromptExtensions: s.system_prompt_extensions,
      logger: context.logger,
    });
  }

  async generate(request: GenerationRequest, signal: AbortSignal): Promise<GeneratedCode> {
    const started = performance.now();
    const { model, maxTokens, temperature, logger } = this.options;
    const prompt = buildCodePrompt(request.request, request.errorChain, 'bare', this.options);
    const messages = [
      { role: 'system' as const, content: prompt.system },
      { role: 'user' as const, content: prompt.user },
    ];
    const recorder = new PromptRecorder(request, this.options.savePrompts ?? true, logger);
    const stem = await recorder.prompt('generate', messages);
    const meta = { generator: this.name, model, endpoint: redactUrl(this.client.baseURL), attempt: request.attempt };

    let completion: OpenAI.Chat.Completions.ChatCompletion;
    const call = linkedSignal(signal);
    try {
      const llm = {
        provider: 'openai' as const,
        model,
        serverAddress: hostOf(this.client.baseURL),
        generator: this.name,
      };
      completion = await inLlmSpan(llm, async (done) => {
        const c = await this.client.chat.completions.create(
          {
            model,
            messages,
            ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
            ...(temperature !== undefined ? { temperature } : {}),
          },
          { signal: call.signal },
        );
        done({
          inputTokens: c.usage?.prompt_tokens,
          outputTokens: c.usage?.completion_tokens,
          responseModel: c.model,
          finishReason: c.choices[0]?.finish_reason,
        });
        return c;
      });
    } catch (err) {
      const mapped = translateSdkError(err, OpenAI, this.errorContext, signal);
      await recorder.finish(undefined, { ...meta, outcome: 'error', error: (mapped as Error).message });
      throw mapped;
    } finally {
      call.dispose();
    }

    const choice = completion.choices[0];
    const reply = choice?.message?.content ?? '';
    await recorder.reply(stem, reply);
    const usage = {
      inputTokens: completion.usage?.prompt_tokens ?? 0,
      outputTokens: completion.usage?.completion_tokens ?? 0,
    };
    const durationMs = Math.round(performance.now() - started);
    const done = { ...meta, usage, durationMs, finishReason: choice?.finish_reason ?? null };
    const code = extractCode(reply);
    if (code === undefined) {
      const error = noCodeError(this.name, reply);
      await recorder.finish(undefined, { ...done, outcome: 'no_code', error: error.message });
      throw error;
    }
    await recorder.finish(code, { ...done, outcome: 'ok' });
    logger?.debug({ generator: this.name, model, usage, durationMs }, 'code generated');
    return {
      code,
      generator: this.name,
      model: completion.model || model,
      usage,
      durationMs,
      metadata: { calls: 1, finishReason: choice?.finish_reason ?? null },
    };
  }
}
