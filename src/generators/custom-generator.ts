import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { CodeGenerator, GeneratorLogger } from './code-generator.js';
import { parseSettings } from './settings.js';

/**
 * Custom generators, Osprey's registry by config: `execution.generators.<name>` names a module and
 * one of its exports, loaded once at start-up.
 * ```yaml
 * execution:
 *   code_generator: domain_specific
 *   generators:
 *     domain_specific:
 *       module_path: ./generators/domain.js   # relative to the config file's folder, or a package name
 *       export: DomainSpecificGenerator        # default: the default export; `class_name` also accepted
 *       domain: physics                        # everything else is the generator's own settings
 * ```
 * The export is either a class, constructed as `new Export(settings, context)`, or a factory function,
 * called as `await Export(settings, context)`; either way the result must implement CodeGenerator.
 */

/** What a custom generator's constructor or factory receives besides its settings. */
export interface CustomGeneratorContext {
  /** The name it is configured under. */
  name: string;
  config: Config;
  env: NodeJS.ProcessEnv;
  logger?: GeneratorLogger | undefined;
}

export const CustomGeneratorRegistration = z.looseObject({
  module_path: z.string().min(1),
  export: z.string().min(1).optional(),
  /** Osprey's CodeGeneratorRegistration key, an alias of `export`. */
  class_name: z.string().min(1).optional(),
});

/** Whether `execution.generators.<name>` registers a custom module. */
export function isCustomRegistration(settings: Record<string, unknown> | null | undefined): boolean {
  return settings != null && settings['module_path'] !== undefined;
}

/** A module path as import() takes it: relative paths resolve against the config file's folder. */
export function resolveModuleSpecifier(modulePath: string, configDir: string): string {
  if (modulePath.startsWith('file:')) return modulePath;
  if (modulePath.startsWith('.') || path.isAbsolute(modulePath)) {
    return pathToFileURL(path.resolve(configDir, modulePath)).href;
  }
  return modulePath;
}

function isClass(value: unknown): value is new (...args: unknown[]) => unknown {
  return typeof value === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(value));
}

function implementsCodeGenerator(value: unknown): value is CodeGenerator {
  const v = value as Partial<CodeGenerator> | null;
  return v !== null && typeof v === 'object' && typeof v.name === 'string' && typeof v.generate === 'function';
}

/** Loads, constructs and checks a custom generator. Every failure is a ConfigError naming the key and module. */
export async function loadCustomGenerator(
  name: string,
  context: CustomGeneratorContext,
  importModule: (specifier: string) => Promise<unknown>,
): Promise<CodeGenerator> {
  const key = `execution.generators.${name}`;
  const reg = parseSettings(CustomGeneratorRegistration, context.config.execution.generators[name], key);
  const exportName = reg.export ?? reg.class_name ?? 'default';
  const specifier = resolveModuleSpecifier(reg.module_path, context.config.pyexec.config_dir);
  const { module_path: _m, export: _e, class_name: _c, ...settings } = reg;

  let mod: Record<string, unknown>;
  try {
    mod = (await importModule(specifier)) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(
      `${key}.module_path: cannot import '${reg.module_path}' (${specifier}): ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const exported = mod[exportName];
  if (typeof exported !== 'function') {
    const names = Object.keys(mod).join(', ') || 'none';
    throw new ConfigError(
      `${key}.export: '${reg.module_path}' has no class or function export '${exportName}' (exports: ${names})`,
    );
  }
  let generator: unknown;
  try {
    generator = isClass(exported)
      ? new exported(settings, context)
      : await (exported as (s: unknown, c: unknown) => unknown)(settings, context);
  } catch (err) {
    throw new ConfigError(
      `${key}: creating '${exportName}' from '${reg.module_path}' failed: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (!implementsCodeGenerator(generator)) {
    throw new ConfigError(
      `${key}: '${exportName}' from '${reg.module_path}' does not implement CodeGenerator (it needs a string \`name\` and a \`generate(request, signal)\` method)`,
    );
  }
  return generator;
}
