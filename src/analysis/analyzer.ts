/**
 * Possible writes that are not control-system operations: starting a process and opening a network
 * connection. A read-only kernel may do neither (docs/security.md), so code that does is held and
 * runs in write mode; Osprey's `detect_control_system_operations` does not report them.
 */
export const CONFINED_OPERATIONS: ReadonlySet<string> = new Set(['process', 'network']);

/** A finding of the static analysis. */
export interface Finding {
  /** Stable rule id, e.g. `epics-write`, `process-spawn`, `syntax`. */
  readonly rule: string;
  readonly severity: 'info' | 'low' | 'medium' | 'high';
  /** 1-based line; 0 when the finding is about the whole program. */
  readonly line: number;
  /** 0-based column, as CPython reports `col_offset`. */
  readonly column: number;
  readonly message: string;
  /** The source line the finding points at. */
  readonly source?: string;
}

/**
 * One control-system write call the analysis found: where it is, what it calls, which PV it writes
 * (the names the analysis resolved, and the expression as written) and the value expression. For
 * the approver's summary; no verdict depends on it.
 */
export interface WriteSite {
  readonly line: number;
  readonly column: number;
  /** The write operation, e.g. `epics.caput`, `epics.PV.put`. */
  readonly call: string;
  /** PV names the analysis resolved the target to (empty when it could not). */
  readonly pvs: readonly string[];
  /** The PV argument (or the handle a method is called on) as written; null when absent. */
  readonly target: string | null;
  /** The value expression as written; null when absent. */
  readonly value: string | null;
}

/** CPython's verdict when compile(code, f, 'exec') rejects a program. */
export interface SyntaxErrorInfo {
  /** CPython's message (`SyntaxError.msg`), e.g. "'return' outside function". */
  readonly message: string;
  /** 1-based line (`SyntaxError.lineno`); 0 when CPython names none. */
  readonly line: number;
  /** 0-based column: CPython's `SyntaxError.offset` minus one (offsets count characters). */
  readonly column: number;
  /** The exception CPython raised: SyntaxError, IndentationError, TabError (or MemoryError, RecursionError). */
  readonly errorName?: string;
}

/** What an analyzer reports about one program. Pure data; the policy turns it into a decision. */
export interface AnalysisReport {
  readonly syntaxOk: boolean;
  readonly syntaxError?: SyntaxErrorInfo;
  readonly hasWrites: boolean;
  readonly hasReads: boolean;
  readonly risk: 'low' | 'medium' | 'high';
  readonly findings: readonly Finding[];
  /** Control-system type the detection ran for (`epics`, ...). */
  readonly controlSystemType: string;
  /** Whether the program assigns a `results` variable (a warning when not). */
  readonly assignsResults: boolean;
  /** What the control-system detection matched: operation names (`epics.caput`, `epics.PV.put`,
   * `cli:caput`) and configured patterns (`pattern:<regex>`); `process` and `network` (CONFINED_OPERATIONS)
   * when the code starts a process or opens a connection that is not to a configured archiver. */
  readonly detectedPatterns?: { readonly writes: readonly string[]; readonly reads: readonly string[] };
  /** The write calls, in line order (see WriteSite); findings remain the verdict. */
  readonly writeSites?: readonly WriteSite[];
  /** Where the analysis spent its time (helper-side verdict and walk), in milliseconds. */
  readonly timingsMs?: { readonly verdict: number; readonly walk: number; readonly total: number };
}

/** The analysis plug-in point: pure, no I/O of its own beyond what the implementation owns. */
export interface Analyzer {
  readonly name: string;
  analyze(code: string): Promise<AnalysisReport>;
  close?(): Promise<void>;
}
