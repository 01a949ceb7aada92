import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { CodeGenerator } from './code-generator.js';
import { MockGenerator } from './mock-generator.js';

/**
 * Builds the generator that `execution.code_generator` names, configured by
 * `execution.generators.<name>`. Throws ConfigError naming the generator when it cannot.
 */
export async function createCodeGenerator(config: Config): Promise<CodeGenerator> {
  const name = config.execution.code_generator;
  const settings = config.execution.generators[name] ?? {};
  switch (name) {
    case 'mock':
      try {
        return MockGenerator.fromConfig(settings);
      } catch (err) {
        throw new ConfigError(`execution.generators.mock: ${(err as Error).message}`, { cause: err });
      }
    default:
      throw new ConfigError(`execution.code_generator: generator '${name}' is not available. Available: mock`);
  }
}
