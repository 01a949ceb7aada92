import { z } from 'zod';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';

/**
 * Settings of the LLM generators (`execution.generators.<name>`), validated here because config.ts
 * keeps them free-form. Every problem is a ConfigError naming the full key, e.g.
 * `execution.generators.basic.model_id: required ...`.
 */

/** Keys both LLM generators read. A named model config (`models.<model_config_name>`) fills the gaps. */
export const LlmSettings = z.strictObject({
  /** Name of an entry of `models` whose model_id / base_url / api_key_env / max_tokens / temperature apply. */
  model_config_name: z.string().min(1).optional(),
  /** Accepted for Osprey compatibility; `basic` always speaks OpenAI Chat Completions. */
  provider: z.string().optional(),
  /** The model, as the endpoint names it. */
  model_id: z.string().min(1).optional(),
  /** Endpoint root, e.g. http://127.0.0.1:8000/v1 for a self-hosted OpenAI-compatible server. */
  base_url: z.url().optional(),
  /** Name of the environment variable holding the API key (never the key itself). */
  api_key_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
    .optional(),
  max_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  /** Time one HTTP call may take. @defaultValue 120000 */
  timeout_ms: z.number().int().positive().default(120_000),
  /** SDK retries (with its backoff) of 408/409/429/5xx/connection errors inside one generation. @defaultValue 2 */
  max_retries: z.number().int().min(0).max(10).default(2),
  /** Latest errors of the chain put into the prompt (Osprey error_feedback.max_errors). @defaultValue 2 */
  max_errors: z.number().int().min(0).max(20).default(2),
  /** Save prompts and raw replies under `<execution folder>/prompts/`. @defaultValue true */
  save_prompts: z.boolean().default(true),
  system_role: z.string().optional(),
  system_prompt_extensions: z.string().optional(),
});
export type LlmSettings = z.output<typeof LlmSettings>;

/** The subset of a `models.<name>` entry the generators use; other keys belong to other consumers. */
const ModelConfig = z.object({
  model_id: z.string().min(1).optional(),
  base_url: z.url().optional(),
  api_key_env: LlmSettings.shape.api_key_env,
  max_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
});

/** Parses `raw` against `schema`; a failure is a ConfigError listing each bad key under `key`. */
export function parseSettings<T extends z.ZodType>(schema: T, raw: unknown, key: string): z.output<T> {
  const parsed = schema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const keys = 'keys' in issue && Array.isArray(issue.keys) ? issue.keys.map(String) : [];
    const at = [key, ...issue.path.map(String)].join('.');
    return keys.length > 0 ? keys.map((k) => `${at}.${k}: unknown key`).join('\n') : `${at}: ${issue.message}`;
  });
  throw new ConfigError(lines.join('\n'));
}

/**
 * Inline settings over the named model config. With neither a model_config_name nor a model_id,
 * `models.<defaultModelConfig>` applies when it exists (Osprey: `python_code_generator`).
 */
export function resolveLlmSettings<T extends LlmSettings>(
  config: Config,
  settings: T,
  key: string,
  defaultModelConfig?: string,
): T {
  let name = settings.model_config_name;
  if (name !== undefined && config.models[name] === undefined) {
    const known = Object.keys(config.models);
    throw new ConfigError(
      `${key}.model_config_name: no model config '${name}' under models (known: ${known.join(', ') || 'none'})`,
    );
  }
  if (
    name === undefined &&
    settings.model_id === undefined &&
    defaultModelConfig &&
    config.models[defaultModelConfig]
  ) {
    name = defaultModelConfig;
  }
  if (name === undefined) return settings;
  const model = parseSettings(ModelConfig, config.models[name], `models.${name}`);
  const inline = Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
  return { ...model, ...inline } as T;
}

/** An environment variable (an API key, a base URL), or undefined when unset or blank. */
export function readEnv(env: NodeJS.ProcessEnv, variable: string): string | undefined {
  const value = env[variable];
  return value && value.trim() !== '' ? value : undefined;
}

/** A URL safe to write down: no user info, no query (either may carry a credential). */
export function redactUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return '[invalid url]';
  }
}
