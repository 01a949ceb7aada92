import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import type { Finding } from './analyzer.js';
import { patternRunner } from './pattern-runner.js';

/** The configured regex patterns for the configured control-system type, compiled. */
export interface CompiledPatterns {
  readonly type: string;
  /** `extend`: the patterns add to the built-in detection; `override`: they replace it. */
  readonly mode: 'extend' | 'override';
  readonly write: readonly RegExp[];
  readonly read: readonly RegExp[];
}

/** Patterns given directly (detectControlSystemOperations), in the shape of `control_system.patterns.<type>`. */
export interface PatternInput {
  readonly write?: readonly string[];
  readonly read?: readonly string[];
  readonly mode?: 'extend' | 'override';
}

/**
 * Compiles `control_system.patterns[control_system.type]`. Patterns of other types are ignored (as in
 * Osprey). Throws ConfigError on an invalid regex; loadConfig already refuses those at start-up.
 */
export function compilePatterns(type: string, input: PatternInput | undefined): CompiledPatterns {
  const compile = (list: readonly string[] | undefined, key: string) =>
    (list ?? []).map((source, i) => {
      try {
        return new RegExp(source, 'g');
      } catch (err) {
        throw new ConfigError(
          `control_system.patterns.${type}.${key}[${i}]: invalid regex ${JSON.stringify(source)}: ${(err as Error).message}`,
        );
      }
    });
  return {
    type,
    mode: input?.mode ?? 'extend',
    write: compile(input?.write, 'write'),
    read: compile(input?.read, 'read'),
  };
}

/** The compiled patterns of a config. */
export function patternsFromConfig(config: Config): CompiledPatterns {
  const type = config.control_system.type;
  return compilePatterns(type, config.control_system.patterns[type]);
}

export function hasPatterns(p: CompiledPatterns): boolean {
  return p.write.length > 0 || p.read.length > 0;
}

/** What the configured patterns found in one program. */
export interface PatternMatches {
  readonly findings: Finding[];
  readonly writes: string[];
  readonly reads: string[];
}

/** Longest time one configured pattern may run over one program (see PatternRunner). */
export const PATTERN_TIMEOUT_MS = 2000;

/**
 * Runs the patterns over the source with strings and comments blanked (the helper's `masked`
 * text: same length and line breaks), so a pattern never matches a decoy in a comment or a string.
 * One finding per pattern, at its first match. The patterns run on a separate thread, each for at
 * most `timeoutMs`: one that does not finish counts as matched (a write pattern then makes the
 * program a possible write, never a silent pass), with a finding that says so.
 */
export async function matchPatterns(
  p: CompiledPatterns,
  masked: string,
  timeoutMs: number = PATTERN_TIMEOUT_MS,
): Promise<PatternMatches> {
  const findings: Finding[] = [];
  const writes: string[] = [];
  const reads: string[] = [];
  const lineStarts = [0];
  for (const m of masked.matchAll(/\r\n|\r|\n/g)) lineStarts.push(m.index + m[0].length);
  const locate = (index: number) => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= index) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: index - lineStarts[lo]! };
  };
  for (const [kind, list, out] of [
    ['write', p.write, writes],
    ['read', p.read, reads],
  ] as const) {
    for (const re of list) {
      const index = await patternRunner.search(re.source, masked, timeoutMs);
      if (index === -1) continue;
      out.push(`pattern:${re.source}`);
      if (index === 'timeout') {
        findings.push({
          rule: `custom-${kind}`,
          severity: kind === 'write' ? 'high' : 'info',
          line: 0,
          column: 0,
          message: `${p.type} ${kind}: the configured ${kind} pattern /${re.source}/ did not finish within ${timeoutMs} ms on this program; treated as a match`,
        });
        continue;
      }
      const at = locate(index);
      findings.push({
        rule: `custom-${kind}`,
        severity: kind === 'write' ? 'medium' : 'info',
        line: at.line,
        column: at.column,
        message: `${p.type} ${kind}: matches the configured ${kind} pattern /${re.source}/`,
      });
    }
  }
  return { findings, writes, reads };
}
