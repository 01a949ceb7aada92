import type { Config } from '../config.js';
import type { ExecutionMode } from '../modes.js';
import { type AnalysisReport, CONFINED_OPERATIONS } from './analyzer.js';

/** What the policy decided about analysed code; the analysis worker routes on it. */
export interface PolicyDecision {
  /** The kernel mode the code needs: write_access when it writes to the control system. */
  readonly mode: ExecutionMode;
  readonly approvalRequired: boolean;
  /** Why approval is (not) required, for the approver and the audit record. */
  readonly approvalReason: string;
  /** A safety refusal: terminal, never regenerated around. */
  readonly refusal?: { readonly errorType: string; readonly message: string };
  /** A code error: regenerate with it in the error chain. `line` and `column` are 1-based, as CPython
   * prints them (`SyntaxError.lineno`, `SyntaxError.offset`); 0 when CPython names no position. */
  readonly codeError?: {
    readonly errorType: 'syntax';
    readonly message: string;
    readonly line: number;
    readonly column: number;
  };
}

/** Whether the approval policy asks a person to see this code. Fail closed on anything unknown. */
export function approvalRequired(config: Config, hasWrites: boolean): { required: boolean; reason: string } {
  const { global_mode, capabilities } = config.approval;
  const py = capabilities.python_execution;
  if (global_mode === 'disabled') return { required: false, reason: 'Approval is disabled globally' };
  const enabled = global_mode === 'all_capabilities' ? true : py.enabled;
  if (!enabled) return { required: false, reason: 'Python execution approval is disabled' };
  switch (py.mode) {
    case 'disabled':
      return { required: false, reason: 'Python execution approval mode is disabled' };
    case 'all_code':
      return { required: true, reason: 'All code requires approval' };
    case 'epics_writes':
      return hasWrites
        ? { required: true, reason: 'Code contains control system write operations' }
        : { required: false, reason: 'Code contains no control system writes (read-only or pure Python)' };
    default:
      return { required: true, reason: 'Unknown approval mode: approval required' };
  }
}

/** The policy as the analysis worker takes it (decidePolicy; a fake in unit tests). */
export type DecidePolicy = (report: AnalysisReport, config: Config) => PolicyDecision;

/** The refusal message for writes while `control_system.writes_enabled` is false (Osprey's wording). */
export const WRITES_BLOCKED = 'EPICS writes blocked by configuration';

/**
 * Turns an analysis report into a decision, in this order:
 * 1. a syntax error → `codeError` (regenerate);
 * 2. writes while `control_system.writes_enabled` or `execution.modes.write_access.allows_writes` is
 *    false → `refusal` writes_disabled (terminal);
 * 3. mode: write_access when the code writes, else read_only;
 * 4. approval: the approval modes (`approvalRequired(config, hasWrites)`), OR the chosen mode's
 *    `requires_approval` unless approval for Python execution is off (globally, `enabled: false`
 *    or mode `disabled`), OR — our addition — high-risk findings
 *    (process spawning, ctypes, exec/eval, secrets, unresolvable dynamic access) whenever approval
 *    for Python execution is on at all (mode epics_writes included): Osprey fails such code outright;
 *    we let a person look instead, and the read-only kernel's run-time guard still refuses spawns and
 *    ctypes. With approval disabled (globally or for python_execution) nothing asks.
 */
export function decidePolicy(report: AnalysisReport, config: Config): PolicyDecision {
  const mode = report.hasWrites ? 'write_access' : 'read_only';
  const approval = decideApproval(report, config, mode);
  if (!report.syntaxOk) {
    const e = report.syntaxError;
    return {
      mode,
      ...approval,
      codeError: {
        errorType: 'syntax',
        message: e ? `${e.errorName ?? 'SyntaxError'}: ${e.message}` : 'SyntaxError',
        line: e?.line ?? 0,
        column: e && e.line > 0 ? e.column + 1 : 0,
      },
    };
  }
  if (report.hasWrites && !config.control_system.writes_enabled) {
    const writes = report.detectedPatterns?.writes ?? [];
    const confinedOnly = writes.length > 0 && writes.every((w) => CONFINED_OPERATIONS.has(w));
    const message = confinedOnly
      ? `${WRITES_BLOCKED}: the code ${writes.map((w) => (w === 'process' ? 'starts a process' : 'opens a network connection')).join(' and ')}, which read-only execution does not allow`
      : WRITES_BLOCKED;
    return { mode, ...approval, refusal: { errorType: 'writes_disabled', message } };
  }
  if (report.hasWrites && !config.execution.modes.write_access.allows_writes) {
    return {
      mode,
      ...approval,
      refusal: {
        errorType: 'writes_disabled',
        message: `${WRITES_BLOCKED} (execution.modes.write_access.allows_writes is false)`,
      },
    };
  }
  return { mode, ...approval };
}

function decideApproval(
  report: AnalysisReport,
  config: Config,
  mode: ExecutionMode,
): { approvalRequired: boolean; approvalReason: string } {
  const base = approvalRequired(config, report.hasWrites);
  if (base.required) return { approvalRequired: true, approvalReason: base.reason };
  const { global_mode, capabilities } = config.approval;
  const py = capabilities.python_execution;
  const pythonApprovalOn =
    global_mode !== 'disabled' && (global_mode === 'all_capabilities' || py.enabled) && py.mode !== 'disabled';
  // An operator who turned approval for Python execution off (globally, for the capability, or
  // with mode `disabled`) gets no hold: the explicit setting wins over the mode's default.
  if (!pythonApprovalOn) return { approvalRequired: false, approvalReason: base.reason };
  if (config.execution.modes[mode].requires_approval) {
    return { approvalRequired: true, approvalReason: `The ${mode} execution mode requires approval` };
  }
  if (report.risk === 'high') {
    const rules = [...new Set(report.findings.filter((f) => f.severity === 'high').map((f) => f.rule))].join(', ');
    return { approvalRequired: true, approvalReason: `High-risk operations need a person's review (${rules})` };
  }
  return { approvalRequired: false, approvalReason: base.reason };
}
