import type { AnalysisReport, Finding } from './analyzer.js';

/** The JSON of `pyexec analyze --json`: exactly these keys, in this order. */
export interface CliReport {
  readonly syntax_ok: boolean;
  readonly has_writes: boolean;
  readonly has_reads: boolean;
  readonly risk: 'low' | 'medium' | 'high';
  readonly findings: ReadonlyArray<{
    readonly rule: string;
    readonly severity: Finding['severity'];
    readonly line: number;
    readonly column: number;
    readonly message: string;
  }>;
}

export function toCliJson(report: AnalysisReport): CliReport {
  return {
    syntax_ok: report.syntaxOk,
    has_writes: report.hasWrites,
    has_reads: report.hasReads,
    risk: report.risk,
    findings: report.findings.map((f) => ({
      rule: f.rule,
      severity: f.severity,
      line: f.line,
      column: f.column,
      message: f.message,
    })),
  };
}

/** A readable report: verdict, control-system summary, then each finding with its source line. */
export function formatReport(report: AnalysisReport, code: string): string {
  const lines = code.split(/\r\n|\r|\n/);
  const out: string[] = [];
  if (report.syntaxOk) out.push('Syntax: ok (CPython 3.11 compiles it)');
  else {
    const e = report.syntaxError;
    out.push(
      `Syntax: ${e?.errorName ?? 'SyntaxError'} at line ${e?.line ?? 0}, column ${(e?.column ?? 0) + 1}: ${e?.message ?? ''}`,
    );
    if (e && e.line > 0) out.push(...excerpt(lines, e.line, e.column, true));
  }
  const detected = report.detectedPatterns;
  const list = (names: readonly string[] | undefined) => (names?.length ? ` (${names.join(', ')})` : '');
  out.push(
    `Control system (${report.controlSystemType}): writes ${report.hasWrites ? 'yes' : 'no'}${list(detected?.writes)}, ` +
      `reads ${report.hasReads ? 'yes' : 'no'}${list(detected?.reads)}`,
  );
  out.push(`Risk: ${report.risk}`);
  const findings = report.findings.filter((f) => f.rule !== 'syntax');
  if (findings.length === 0) out.push('Findings: none');
  else {
    out.push(`Findings (${findings.length}):`);
    for (const f of findings) {
      const where = f.line > 0 ? `line ${f.line}, col ${f.column}` : 'program';
      out.push(`  ${where}  [${f.severity}] ${f.rule}: ${f.message}`);
      if (f.line > 0) out.push(...excerpt(lines, f.line, f.column, false).map((l) => `  ${l}`));
    }
  }
  return `${out.join('\n')}\n`;
}

function excerpt(lines: readonly string[], line: number, column: number, caret: boolean): string[] {
  const text = lines[line - 1];
  if (text === undefined) return [];
  const gutter = `${String(line).padStart(5)} | `;
  const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  const out = [`${gutter}${shown}`];
  if (caret) out.push(`${' '.repeat(gutter.length + Math.min(column, shown.length))}^`);
  return out;
}
