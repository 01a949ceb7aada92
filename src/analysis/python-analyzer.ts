import { z } from 'zod';
import type { AnalysisReport, Analyzer, Finding } from './analyzer.js';
import { AnalysisHelperError } from './errors.js';
import { type CompiledPatterns, hasPatterns, matchPatterns, type PatternMatches } from './patterns.js';
import { PythonHelper, type PythonHelperOptions } from './python-helper.js';

export interface PythonAnalyzerOptions extends PythonHelperOptions {
  /** Configured patterns (control_system.patterns for control_system.type). */
  readonly patterns: CompiledPatterns;
  /** Absolute paths whose files count as the service's own configuration or secrets. */
  readonly protectedPaths?: readonly string[];
  /** URL prefixes of archivers the code may read over HTTP (control_system.archivers). */
  readonly archivers?: readonly string[];
  /** A helper to share (detectControlSystemOperations shares one); else the analyzer owns its own. */
  readonly helper?: PythonHelper;
  /** Longest time one configured pattern may run over one program. @defaultValue 2000 */
  readonly patternTimeoutMs?: number;
}

const Severity = z.enum(['info', 'low', 'medium', 'high']);
/** What the helper answers (python/pyexec_runtime/analysis/analyze.py); parsed, never trusted blindly. */
const HelperResult = z.object({
  syntax_ok: z.boolean(),
  syntax_error: z
    .object({ type: z.string(), message: z.string(), line: z.number().int(), column: z.number().int() })
    .nullable(),
  findings: z.array(
    z.object({
      rule: z.string(),
      severity: Severity,
      line: z.number().int(),
      column: z.number().int(),
      message: z.string(),
    }),
  ),
  writes: z.array(z.string()),
  reads: z.array(z.string()),
  possible_writes: z.boolean(),
  write_sites: z
    .array(
      z.object({
        line: z.number().int(),
        column: z.number().int(),
        call: z.string(),
        pvs: z.array(z.string()),
        target: z.string().nullable(),
        value: z.string().nullable(),
      }),
    )
    .default([]),
  assigns_results: z.boolean(),
  masked: z.string().nullable(),
  timings_ms: z.object({ verdict: z.number(), walk: z.number() }),
});
type HelperResult = z.output<typeof HelperResult>;

const NEWLINE = /\r\n|\r|\n/;
const SEVERITY_ORDER = { info: 0, low: 1, medium: 2, high: 3 } as const;

/**
 * The analyzer: CPython's own parser and compiler give the syntax verdict (exactly what
 * `compile(code, f, 'exec')` says), and a walk over CPython's `ast` follows names from imports to
 * control-system operations. Both run in a long-lived Python helper (see PythonHelper); this class
 * adds the configured patterns and shapes the report.
 */
export class PythonAnalyzer implements Analyzer {
  readonly name = 'python-ast';
  private readonly helper: PythonHelper;
  private readonly ownsHelper: boolean;

  constructor(private readonly options: PythonAnalyzerOptions) {
    this.helper = options.helper ?? new PythonHelper(options);
    this.ownsHelper = options.helper === undefined;
  }

  async analyze(code: string): Promise<AnalysisReport> {
    const started = performance.now();
    const { patterns } = this.options;
    const raw = await this.helper.request('analyze', code, {
      builtin_cs: patterns.mode !== 'override',
      mask: hasPatterns(patterns),
      protected_paths: this.options.protectedPaths ?? [],
      archivers: this.options.archivers ?? [],
    });
    const parsed = HelperResult.safeParse(raw);
    if (!parsed.success)
      throw new AnalysisHelperError(`the analysis helper answered an unexpected shape: ${parsed.error.message}`);
    const custom: PatternMatches =
      parsed.data.masked !== null
        ? await matchPatterns(patterns, parsed.data.masked, this.options.patternTimeoutMs)
        : { findings: [], writes: [], reads: [] };
    return this.report(code, parsed.data, custom, performance.now() - started);
  }

  /** Pass-through to the helper: a bare `ast.parse` of the program (for the benchmark). */
  async parseOnly(code: string): Promise<{ syntaxOk: boolean; parseMs: number }> {
    const raw = (await this.helper.request('parse', code)) as { syntax_ok: boolean; timings_ms: { parse: number } };
    return { syntaxOk: raw.syntax_ok, parseMs: raw.timings_ms.parse };
  }

  async close(): Promise<void> {
    if (this.ownsHelper) await this.helper.close();
  }

  private report(code: string, r: HelperResult, custom: PatternMatches, totalMs: number): AnalysisReport {
    const lines = code.split(NEWLINE);
    const findings: Finding[] = [];
    if (r.syntax_error) {
      const e = r.syntax_error;
      findings.push({
        rule: 'syntax',
        severity: 'info',
        line: e.line,
        column: e.column,
        message: `${e.type}: ${e.message}`,
      });
    }
    findings.push(...r.findings);
    findings.push(...custom.findings);
    const writes = [...r.writes, ...custom.writes];
    const reads = [...r.reads, ...custom.reads];
    findings.sort((a, b) => a.line - b.line || a.column - b.column);
    const withSource = findings.map((f) =>
      f.line > 0 && f.line <= lines.length ? { ...f, source: lines[f.line - 1]!.slice(0, 300) } : f,
    );
    const worst = Math.max(0, ...findings.map((f) => SEVERITY_ORDER[f.severity]));
    return {
      syntaxOk: r.syntax_ok,
      ...(r.syntax_error
        ? {
            syntaxError: {
              message: r.syntax_error.message,
              line: r.syntax_error.line,
              column: r.syntax_error.column,
              errorName: r.syntax_error.type,
            },
          }
        : {}),
      hasWrites: writes.length > 0,
      hasReads: reads.length > 0,
      risk: worst >= 3 ? 'high' : worst === 2 ? 'medium' : 'low',
      findings: withSource,
      controlSystemType: this.options.patterns.type,
      assignsResults: r.assigns_results,
      detectedPatterns: { writes, reads },
      writeSites: r.write_sites
        .map((w) => ({ line: w.line, column: w.column, call: w.call, pvs: w.pvs, target: w.target, value: w.value }))
        .sort((a, b) => a.line - b.line || a.column - b.column),
      timingsMs: { verdict: r.timings_ms.verdict, walk: r.timings_ms.walk, total: Math.round(totalMs * 1000) / 1000 },
    };
  }
}
