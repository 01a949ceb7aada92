import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { AnthropicGenerator, type AnthropicSdk, loadAnthropicSdk } from './anthropic-generator.js';
import type { CodeGenerator, GeneratorLogger } from './code-generator.js';
import { isCustomRegistration, loadCustomGenerator } from './custom-generator.js';
import { HybridGenerator, HybridSettings } from './hybrid-generator.js';
import { MockGenerator } from './mock-generator.js';
import { OpenAiGenerator } from './openai-generator.js';
import { parseSettings } from './settings.js';

/** The generators pyexec ships; any other name must be registered with a module_path. */
export const BUILTIN_GENERATORS = ['basic', 'claude_code', 'mock', 'hybrid'] as const;

export interface CreateCodeGeneratorOptions {
  /** Where API keys are read from. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Told about fallbacks. Without one, a fallback is a process warning (PYEXEC_GENERATOR_FALLBACK). */
  logger?: GeneratorLogger;
  /** import() for the optional Anthropic SDK and custom modules; tests replace it to hide a package. */
  importModule?: (specifier: string) => Promise<unknown>;
}

interface BuildContext {
  config: Config;
  env: NodeJS.ProcessEnv;
  logger: GeneratorLogger | undefined;
  importModule: (specifier: string) => Promise<unknown>;
}

/**
 * Builds the generator that `execution.code_generator` names, configured by
 * `execution.generators.<name>`, at start-up. A name whose settings carry `module_path` is a custom
 * generator (even a built-in name: registrations come first, as in Osprey's registry). `claude_code`
 * falls back to `basic` when `@anthropic-ai/sdk` cannot be imported, and says so. Throws ConfigError
 * naming the key for an unknown name, bad settings, a missing key, or a module that is not a generator.
 */
export async function createCodeGenerator(
  config: Config,
  options: CreateCodeGeneratorOptions = {},
): Promise<CodeGenerator> {
  const ctx: BuildContext = {
    config,
    env: options.env ?? process.env,
    logger: options.logger,
    importModule: options.importModule ?? ((specifier) => import(specifier)),
  };
  return build(config.execution.code_generator, ctx, []);
}

async function build(name: string, ctx: BuildContext, via: readonly string[]): Promise<CodeGenerator> {
  if (via.includes(name)) {
    throw new ConfigError(`execution.generators.${via.at(-1)}: generator cycle ${[...via, name].join(' → ')}`);
  }
  const { config } = ctx;
  const settings = config.execution.generators[name];
  if (isCustomRegistration(settings)) {
    return loadCustomGenerator(name, { name, config, env: ctx.env, logger: ctx.logger }, ctx.importModule);
  }
  switch (name) {
    case 'mock':
      try {
        return MockGenerator.fromConfig(settings);
      } catch (err) {
        throw new ConfigError(`execution.generators.mock: ${(err as Error).message}`, { cause: err });
      }
    case 'basic':
      return OpenAiGenerator.fromConfig(config, name, ctx);
    case 'legacy':
      // Osprey's deprecated name of basic: its settings under generators.legacy, else generators.basic.
      return OpenAiGenerator.fromConfig(config, config.execution.generators['legacy'] ? 'legacy' : 'basic', ctx);
    case 'claude_code':
      return buildClaude(name, ctx, via);
    case 'hybrid': {
      const s = parseSettings(HybridSettings, settings, `execution.generators.${name}`);
      const fast = await build(s.fast, ctx, [...via, name]);
      const quality = await build(s.quality, ctx, [...via, name]);
      return new HybridGenerator(fast, quality, name);
    }
    default: {
      const where = via.length === 0 ? 'execution.code_generator' : `execution.generators.${via.at(-1)}`;
      throw new ConfigError(
        `${where}: generator '${name}' is not available. Built-in: ${BUILTIN_GENERATORS.join(', ')}; ` +
          `a custom generator needs execution.generators.${name}.module_path`,
      );
    }
  }
}

async function buildClaude(name: string, ctx: BuildContext, via: readonly string[]): Promise<CodeGenerator> {
  let sdk: AnthropicSdk;
  try {
    sdk = await loadAnthropicSdk(ctx.importModule);
  } catch (err) {
    const reason = (err as Error).message;
    const message = `${name}: @anthropic-ai/sdk cannot be imported (${reason}); falling back to the basic generator`;
    if (ctx.logger) ctx.logger.warn({ generator: name, fallback: 'basic' }, message);
    else process.emitWarning(message, { code: 'PYEXEC_GENERATOR_FALLBACK' });
    try {
      return await build('basic', ctx, [...via, name]);
    } catch (fallbackErr) {
      throw new ConfigError(`${message}, which is not configured: ${(fallbackErr as Error).message}`, {
        cause: fallbackErr,
      });
    }
  }
  return AnthropicGenerator.fromConfig(ctx.config, name, sdk, ctx);
}
