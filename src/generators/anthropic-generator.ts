import type Anthropic from '@anthropic-ai/sdk';
import { z } from 'zod';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { inLlmSpan } from '../telemetry/llm.js';
import { readClaudeConfigFile } from './claude-config-file.js';
import { BUILTIN_CLAUDE_PROFILES, type ClaudePhase, ClaudeProfile } from './claude-profiles.js';
import type { CodeGenerator, GeneratedCode, GenerationRequest, GeneratorLogger, TokenUsage } from './code-generator.js';
import { extractCode } from './extract-code.js';
import { linkedSignal } from './linked-signal.js';
import { buildSystemPrompt, buildTaskSection, type PromptOptions, renderErrorChain } from './prompt.js';
import { PromptRecorder, type RecordedMessage } from './prompt-recorder.js';
import { type ErrorContext, noCodeError, type SdkErrorClasses, translateSdkError } from './sdk-errors.js';
import { LlmSettings, parseSettings, readEnv, redactUrl, resolveLlmSettings } from './settings.js';

/**
 * The `claude_code` generator: the Anthropic Messages API with profiles, after Osprey's Claude Code
 * generator (its pre-0.11 `fast | balanced | robust` profiles). One conversation per generation:
 * - `fast`: generate (one call);
 * - `balanced`: plan, then generate (two calls);
 * - `robust`: plan, generate, then a self-review that answers APPROVED or a revised program (three calls).
 * On a retry the error chain replaces the plan: the plan phase is skipped (Osprey runs only `generate`
 * on retry) and the review, if the profile has one, still runs.
 * The SDK is imported by the factory (`loadAnthropicSdk`), never statically, so that a missing
 * `@anthropic-ai/sdk` lets the factory fall back to `basic`.
 */

/** `execution.generators.claude_code`: the LlmSettings keys plus the profile choice and custom profiles. */
export const ClaudeSettings = LlmSettings.extend({
  /** The Messages API takes 0..1. */
  temperature: z.number().min(0).max(1).optional(),
  /** fast | balanced | robust | a name under `profiles`. @defaultValue "fast" */
  profile: z.string().min(1).default('fast'),
  /** Extra or replaced profiles, by name. */
  profiles: z.record(z.string(), ClaudeProfile).default({}),
  /** Osprey's claude_generator_config.yml, relative to the config file: its `profiles` are read. */
  claude_config_path: z.string().min(1).optional(),
});

export const DEFAULT_CLAUDE_MODEL = 'claude-haiku-4-5-20251001';
const DEFAULT_MAX_TOKENS = 4096;
const NO_KEY = 'no-key-set';

/** The part of the SDK module the generator uses: the client class, whose statics are the error classes. */
export type AnthropicSdk = { default: typeof Anthropic };

/** Imports `@anthropic-ai/sdk` through `importModule`; throws whatever the import throws. */
export async function loadAnthropicSdk(importModule: (specifier: string) => Promise<unknown>): Promise<AnthropicSdk> {
  const mod = (await importModule('@anthropic-ai/sdk')) as Partial<AnthropicSdk>;
  if (typeof mod.default !== 'function') throw new Error('@anthropic-ai/sdk has no default export');
  return mod as AnthropicSdk;
}

export interface AnthropicGeneratorOptions extends PromptOptions {
  /** @defaultValue "claude_code" */
  name?: string;
  /** A client made from the imported SDK. */
  client: Anthropic;
  /** The SDK's error classes (the client class itself carries them). */
  errors: SdkErrorClasses;
  profileName: string;
  profile: ClaudeProfile;
  model: string;
  maxTokens: number;
  temperature?: number | undefined;
  apiKeyEnv: string;
  apiKey?: string | undefined;
  timeoutMs: number;
  savePrompts?: boolean;
  logger?: GeneratorLogger | undefined;
}

const PLAN_ASK =
  'Before writing any code, write a short numbered plan: the imports, the approach, the data structures, the key steps, the structure of the `results` dictionary, and how missing data and errors are handled. Do not write the code yet.';
const CODE_ASK = 'Reply with the complete Python program in one ```python fenced block.';
const IMPLEMENT_ASK = `Now implement the plan. ${CODE_ASK}`;
const REVIEW_ASK =
  'Review the program above against the task: it must run as is, import what it uses, read data from `context` rather than invent it, and store its results in the `results` dictionary. If it needs no change, reply with exactly APPROVED. Otherwise reply with the complete corrected program in one ```python fenced block.';

export class AnthropicGenerator implements CodeGenerator {
  readonly name: string;
  private readonly errorContext: ErrorContext;

  constructor(private readonly options: AnthropicGeneratorOptions) {
    this.name = options.name ?? 'claude_code';
    this.errorContext = {
      generator: this.name,
      endpoint: `the Anthropic endpoint ${redactUrl(options.client.baseURL)}`,
      model: options.model,
      apiKeyEnv: options.apiKeyEnv,
      timeoutMs: options.timeoutMs,
      secrets: [options.apiKey],
    };
  }

  /** Builds `claude_code` from `execution.generators.<name>` with an imported SDK. Throws ConfigError naming the key. */
  static fromConfig(
    config: Config,
    name: string,
    sdk: AnthropicSdk,
    context: { env: NodeJS.ProcessEnv; logger?: GeneratorLogger | undefined },
  ): AnthropicGenerator {
    const key = `execution.generators.${name}`;
    const s = resolveLlmSettings(config, parseSettings(ClaudeSettings, config.execution.generators[name], key), key);
    const fromFile = s.claude_config_path
      ? readClaudeConfigFile(
          s.claude_config_path,
          config.pyexec.config_dir,
          `${key}.claude_config_path`,
          context.logger ? (m) => context.logger?.warn({ generator: name }, m) : undefined,
        )
      : {};
    const profiles = { ...BUILTIN_CLAUDE_PROFILES, ...fromFile, ...s.profiles };
    const profile = profiles[s.profile];
    if (!profile) {
      throw new ConfigError(
        `${key}.profile: unknown profile '${s.profile}' (known: ${Object.keys(profiles).join(', ')})`,
      );
    }
    const apiKeyEnv = s.api_key_env ?? 'ANTHROPIC_API_KEY';
    const apiKey = readEnv(context.env, apiKeyEnv);
    if (!apiKey && !s.base_url) {
      throw new ConfigError(
        `${key}: no API key: the environment variable ${apiKeyEnv} is not set (set it, or name another with api_key_env)`,
      );
    }
    const Client = sdk.default;
    // An explicit apiKey keeps the SDK from searching the environment and disk for other credentials.
    const client = new Client({
      apiKey: apiKey ?? NO_KEY,
      baseURL: s.base_url ?? null,
      timeout: s.timeout_ms,
      maxRetries: s.max_retries,
    });
    return new AnthropicGenerator({
      name,
      client,
      errors: Client,
      profileName: s.profile,
      profile,
      model: profile.model ?? s.model_id ?? DEFAULT_CLAUDE_MODEL,
      maxTokens: profile.max_tokens ?? s.max_tokens ?? DEFAULT_MAX_TOKENS,
      temperature: profile.temperature ?? s.temperature,
      apiKeyEnv,
      apiKey,
      timeoutMs: s.timeout_ms,
      savePrompts: s.save_prompts,
      maxErrors: s.max_errors,
      systemRole: s.system_role,
      systemPromptExtensions: s.system_prompt_extensions,
      logger: context.logger,
    });
  }

  /** The phases this request runs: the profile's, minus `plan` on a retry. */
  phasesFor(request: GenerationRequest): ClaudePhase[] {
    const phases = this.options.profile.phases;
    return request.errorChain.length > 0 ? phases.filter((p) => p !== 'plan') : [...phases];
  }

  async generate(request: GenerationRequest, signal: AbortSignal): Promise<GeneratedCode> {
    const started = performance.now();
    const { model, logger, profileName } = this.options;
    const system = buildSystemPrompt('fenced', this.options);
    const recorder = new PromptRecorder(request, this.options.savePrompts ?? true, logger);
    const phases = this.phasesFor(request);
    const messages: RecordedMessage[] = [];
    const usage = { inputTokens: 0, outputTokens: 0 };
    const meta = { generator: this.name, model, profile: profileName, phases, attempt: request.attempt };
    let code: string | undefined;
    let revised = false;
    const link = linkedSignal(signal);

    try {
      for (const phase of phases) {
        messages.push({ role: 'user', content: this.phasePrompt(phase, request, messages.length === 0) });
        const reply = await this.call(phase, system, messages, recorder, usage, link.signal);
        messages.push({ role: 'assistant', content: reply });
        if (phase === 'generate') {
          code = extractCode(reply);
          if (code === undefined) throw noCodeError(this.name, reply);
        } else if (phase === 'review') {
          const revision = extractCode(reply, { allowBare: false });
          if (revision !== undefined && revision !== code) {
            code = revision;
            revised = true;
          }
        }
      }
    } catch (err) {
      const mapped = translateSdkError(err, this.options.errors, this.errorContext, signal);
      const durationMs = Math.round(performance.now() - started);
      await recorder.finish(undefined, {
        ...meta,
        usage,
        durationMs,
        outcome: 'error',
        error: (mapped as Error).message,
      });
      throw mapped;
    } finally {
      link.dispose();
    }

    const durationMs = Math.round(performance.now() - started);
    await recorder.finish(code, { ...meta, usage, durationMs, revised, outcome: 'ok' });
    logger?.debug({ generator: this.name, model, profile: profileName, usage, durationMs }, 'code generated');
    return {
      code: code!,
      generator: this.name,
      model,
      usage,
      durationMs,
      metadata: { profile: profileName, phases, calls: phases.length, revised },
    };
  }

  private phasePrompt(phase: ClaudePhase, request: GenerationRequest, first: boolean): string {
    if (phase === 'review') return REVIEW_ASK;
    if (phase === 'generate' && !first) return IMPLEMENT_ASK;
    const parts = [buildTaskSection(request.request)];
    const errors = renderErrorChain(request.errorChain, this.options.maxErrors ?? 2);
    if (errors) parts.push(errors);
    parts.push(phase === 'plan' ? PLAN_ASK : CODE_ASK);
    return parts.join('\n\n');
  }

  private async call(
    phase: ClaudePhase,
    system: string,
    messages: readonly RecordedMessage[],
    recorder: PromptRecorder,
    usage: { inputTokens: number; outputTokens: number },
    signal: AbortSignal,
  ): Promise<string> {
    const { client, model, maxTokens, temperature } = this.options;
    const stem = await recorder.prompt(phase, [{ role: 'system', content: system }, ...messages]);
    const llm = { provider: 'anthropic' as const, model, generator: this.name, phase };
    const message = await inLlmSpan(llm, async (done) => {
      const m = await client.messages.create(
        {
          model,
          max_tokens: maxTokens,
          system,
          messages: messages.map((m) => ({ role: m.role as 'user' | 'assistant', content: m.content })),
          ...(temperature !== undefined ? { temperature } : {}),
        },
        { signal },
      );
      done({
        inputTokens: m.usage?.input_tokens,
        outputTokens: m.usage?.output_tokens,
        responseModel: m.model,
        finishReason: m.stop_reason,
      });
      return m;
    });
    const text = message.content
      .filter((block) => block.type === 'text')
      .map((block) => (block as { text: string }).text)
      .join('');
    await recorder.reply(stem, text);
    addUsage(usage, { inputTokens: message.usage?.input_tokens ?? 0, outputTokens: message.usage?.output_tokens ?? 0 });
    return text;
  }
}

function addUsage(total: { inputTokens: number; outputTokens: number }, add: TokenUsage): void {
  total.inputTokens += add.inputTokens;
  total.outputTokens += add.outputTokens;
}
