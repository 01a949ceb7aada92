import type { ExecutionMode } from '../modes.js';
import type { AnalysisRecord, ApprovalRecord, Finding } from '../queues/envelope.js';
import type { PythonExecutionRequest } from '../request.js';
import type { HeldJob, HeldJobDetail, HoldStatus } from './approval-service.js';

type Severity = Finding['severity'];
const RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3 };

/** Findings that stand for a control-system write (the analysis' own, and configured write patterns). */
const WRITE_RULES = new Set(['epics-write', 'epics-possible-write', 'epics-dynamic', 'custom-write', 'analysis-limit']);

/**
 * One write the code will make, as the approver's summary lists it: a write call the analysis took
 * apart (PV names it resolved, the target and value as written), or a write finding it could not
 * take apart (`resolved: false`: only the line and the analyzer's message are known).
 */
export interface WriteView {
  readonly line: number;
  /** The write operation (`epics.caput`), or the finding's rule when not taken apart. */
  readonly call: string;
  readonly pvs: readonly string[];
  readonly target: string | null;
  readonly value: string | null;
  readonly resolved: boolean;
  readonly message?: string;
}

/** A held job in a list: enough to pick one, without the code. */
export interface HeldSummaryView {
  readonly holdJobId: string;
  readonly requestId: string;
  readonly threadId: string;
  /** Who asked (the request's `session_context.user_id`); null when the producer did not say. */
  readonly requester: string | null;
  readonly submittedAt: number;
  /** Every PV the analysis resolved a write to, in line order (no repeats). */
  readonly writePvs: readonly string[];
  /** Writes found, with those the analysis could not take apart. */
  readonly writeCount: number;
  readonly taskObjective: string;
  readonly userQuery: string;
  readonly mode: ExecutionMode;
  readonly risk: string;
  readonly approvalReason: string;
  readonly findingCount: number;
  readonly lineCount: number;
  readonly codeSha256: string;
  readonly deadline: number;
  readonly heldAt: number;
  readonly attempt: number;
}

/** One numbered line of the code, with the indexes of the findings that point at it. */
export interface CodeLineView {
  readonly number: number;
  readonly text: string;
  readonly findings: readonly number[];
  /** The highest severity among those findings; null for a line without findings. */
  readonly severity: Severity | null;
}

/** Everything an approver is shown before deciding, and what a decision must echo back. */
export interface HeldDetailView extends HeldSummaryView {
  readonly status: HoldStatus;
  readonly request: PythonExecutionRequest;
  readonly code: string;
  readonly lines: readonly CodeLineView[];
  /** What the code will write, in line order: read this first. */
  readonly writes: readonly WriteView[];
  /** Findings in the analyzer's order; `index` is what `lines[].findings` refers to. */
  readonly findings: ReadonlyArray<Finding & { readonly index: number }>;
  readonly hasWrites: boolean;
  readonly hasReads: boolean;
  readonly analyzer: string;
  /** Send these back with an approval: the API refuses it when the job changed since. */
  readonly analysisSha256: string;
  readonly decision: ApprovalRecord | null;
}

export function heldSummary(h: HeldJob): HeldSummaryView {
  const writes = writesOf(h.analysis);
  return {
    holdJobId: h.holdJobId,
    requestId: h.requestId,
    threadId: h.threadId,
    requester: h.requester,
    submittedAt: h.submittedAt,
    writePvs: [...new Set(writes.flatMap((w) => w.pvs))],
    writeCount: writes.length,
    taskObjective: h.taskObjective,
    userQuery: h.userQuery,
    mode: h.mode,
    risk: h.risk,
    approvalReason: h.analysis.approvalReason,
    findingCount: h.analysis.findings.length,
    lineCount: splitLines(h.code).length,
    codeSha256: h.codeSha256,
    deadline: h.deadline,
    heldAt: h.heldAt,
    attempt: h.attempt,
  };
}

export function heldDetail(h: HeldJobDetail): HeldDetailView {
  return {
    ...heldSummary(h),
    status: h.status,
    request: h.request,
    code: h.code,
    lines: numberLines(h.code, h.analysis.findings),
    writes: writesOf(h.analysis),
    findings: h.analysis.findings.map((f, index) => ({ ...f, index })),
    hasWrites: h.analysis.hasWrites,
    hasReads: h.analysis.hasReads,
    analyzer: h.analysis.analyzer,
    analysisSha256: h.analysisSha256,
    decision: h.decision,
  };
}

/**
 * The writes of an analysis in line order: each write call it took apart, then (at their lines) the
 * write findings on lines with no such call, so nothing the analysis counts as a write is left off.
 */
export function writesOf(
  analysis: Pick<AnalysisRecord, 'findings'> & { writes?: AnalysisRecord['writes'] },
): WriteView[] {
  const sites: WriteView[] = (analysis.writes ?? []).map((w) => ({
    line: w.line,
    call: w.call,
    pvs: w.pvs,
    target: w.target,
    value: w.value,
    resolved: true,
  }));
  const covered = new Set(sites.map((w) => w.line));
  const others: WriteView[] = analysis.findings
    .filter((f) => WRITE_RULES.has(f.rule) && !covered.has(f.line))
    .map((f) => ({
      line: f.line,
      call: f.rule,
      pvs: [],
      target: null,
      value: null,
      resolved: false,
      message: f.message,
    }));
  return [...sites, ...others].sort((a, b) => a.line - b.line);
}

/** Numbers the lines (from 1) and attaches each finding to its line; line 0 means the whole program. */
export function numberLines(code: string, findings: readonly Finding[]): CodeLineView[] {
  const lines = splitLines(code).map((text, i) => ({
    number: i + 1,
    text,
    findings: [] as number[],
    severity: null as Severity | null,
  }));
  findings.forEach((f, index) => {
    const line = lines[f.line - 1];
    if (!line) return;
    line.findings.push(index);
    if (line.severity === null || RANK[f.severity] > RANK[line.severity]) line.severity = f.severity;
  });
  return lines;
}

function splitLines(code: string): string[] {
  const lines = code.split(/\r\n|\r|\n/);
  if (lines.length > 1 && lines.at(-1) === '') lines.pop();
  return lines;
}
