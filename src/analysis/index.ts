import type { Config } from '../config.js';
import type { Analyzer } from './analyzer.js';
import { patternsFromConfig } from './patterns.js';
import { PythonAnalyzer, type PythonAnalyzerOptions } from './python-analyzer.js';

export type { AnalysisReport, Analyzer, Finding, SyntaxErrorInfo, WriteSite } from './analyzer.js';
export { CONFINED_OPERATIONS } from './analyzer.js';
export type { ControlSystemOperations, DetectOptions } from './detect.js';
export { detectControlSystemOperations } from './detect.js';
export { AnalysisHelperError, AnalysisResourceError, AnalysisTimeoutError, CodeTooLargeError } from './errors.js';
export type { CompiledPatterns, PatternInput } from './patterns.js';
export { compilePatterns, patternsFromConfig } from './patterns.js';
export type { DecidePolicy, PolicyDecision } from './policy.js';
export { decidePolicy, WRITES_BLOCKED } from './policy.js';
export type { PythonAnalyzerOptions } from './python-analyzer.js';
export { PythonAnalyzer } from './python-analyzer.js';
export type { PythonHelperOptions } from './python-helper.js';
export { PythonHelper } from './python-helper.js';
export type { CliReport } from './report-format.js';
export { formatReport, toCliJson } from './report-format.js';

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
