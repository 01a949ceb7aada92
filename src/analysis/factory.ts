import type { Config } from '../config.js';
import type { Analyzer } from './analyzer.js';
import { patternsFromConfig } from './patterns.js';
import { PythonAnalyzer, type PythonAnalyzerOptions } from './python-analyzer.js';

/**
 * The analyzer of a config: cheap to construct (the Python helper starts on the first `analyze`).
 * Throws ConfigError when a configured pattern is not a valid regex.
 */
export function createAnalyzer(
  config: Config,
  overrides: Partial<Omit<PythonAnalyzerOptions, 'patterns'>> = {},
): Analyzer & { close(): Promise<void> } {
  return new PythonAnalyzer({
    python: config.pyexec.python,
    patterns: patternsFromConfig(config),
    archivers: config.control_system.archivers,
    ...overrides,
  });
}
