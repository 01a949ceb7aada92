import { type Config, parseConfig } from '../config.js';
import { type Analyzer, CONFINED_OPERATIONS } from './analyzer.js';
import { compilePatterns, type PatternInput, patternsFromConfig } from './patterns.js';
import { PythonAnalyzer } from './python-analyzer.js';
import { PythonHelper } from './python-helper.js';

/** Osprey's `detect_control_system_operations` result, with pyexec's name-following detection behind it. */
export interface ControlSystemOperations {
  readonly has_writes: boolean;
  readonly has_reads: boolean;
  readonly control_system_type: string;
  /** What matched: operation names (`epics.caput`, `p4p.Context.put`, `cli:caput`) and `pattern:<regex>`. */
  readonly detected_patterns: { readonly writes: readonly string[]; readonly reads: readonly string[] };
}

export interface DetectOptions {
  /** Patterns and type come from here (control_system.type and .patterns); default: the default config. */
  readonly config?: Config;
  /** Overrides the configured type. */
  readonly controlSystemType?: string;
  /** Overrides the configured patterns for the type (Osprey's `patterns` + `pattern_mode`). */
  readonly patterns?: PatternInput;
  /** Analyzer to use instead of the shared one (its own patterns then apply). */
  readonly analyzer?: Analyzer;
}

let shared: PythonHelper | undefined;

/**
 * Classifies a program's control-system operations. Without an `analyzer`, it uses one helper
 * process shared by every call in this process (started on first use, idle without holding the
 * event loop). Code that does not parse has no operations (it can never run).
 */
export async function detectControlSystemOperations(
  code: string,
  options: DetectOptions = {},
): Promise<ControlSystemOperations> {
  let analyzer = options.analyzer;
  if (!analyzer) {
    const config = options.config ?? parseConfig({});
    const type = options.controlSystemType ?? config.control_system.type;
    const patterns = options.patterns
      ? compilePatterns(type, options.patterns)
      : options.controlSystemType
        ? compilePatterns(type, config.control_system.patterns[type])
        : patternsFromConfig(config);
    shared ??= new PythonHelper({ python: config.pyexec.python });
    analyzer = new PythonAnalyzer({ patterns, helper: shared });
  }
  const report = await analyzer.analyze(code);
  // Osprey's result names control-system operations only: starting a process or opening a
  // connection is a possible write in pyexec's policy (CONFINED_OPERATIONS), not an operation here.
  const writes = (report.detectedPatterns?.writes ?? []).filter((w) => !CONFINED_OPERATIONS.has(w));
  return {
    has_writes: writes.length > 0,
    has_reads: report.hasReads,
    control_system_type: report.controlSystemType,
    detected_patterns: {
      writes,
      reads: report.detectedPatterns?.reads ?? [],
    },
  };
}
