import type { Processor } from 'bullmq';
import type { Analyzer } from '../analysis/analyzer.js';
import type { DecidePolicy } from '../analysis/policy.js';
import { CorruptJobError } from '../errors.js';
import { AnalysisJob } from '../queues/analysis.js';
import type { AnalysisRecord } from '../queues/envelope.js';
import { writeJson } from '../store/execution-folder.js';
import {
  endRequest,
  handoff,
  regenerateOrFail,
  type StageDeps,
  sha256,
  stageProcessor,
  withError,
  withTiming,
} from './stage-runtime.js';

/**
 * Analysis: runs the static analysis, applies the policy, and routes: syntax errors back to
 * generation, refused code to `rejected`, code that needs a person to the approval hold (a delayed
 * job whose delay is the deadline), everything else to execution.
 */
export function createAnalysisProcessor(
  deps: StageDeps & { analyzer: Analyzer; decidePolicy: DecidePolicy },
): Processor {
  return stageProcessor(deps, 'analysis', AnalysisJob, async ({ env, startedAt }) => {
    if (sha256(env.code) !== env.codeSha256) throw new CorruptJobError('code does not match its sha256 (corrupt job)');
    const report = await deps.analyzer.analyze(env.code);
    const policy = deps.decidePolicy(report, deps.config);
    for (const f of report.findings) deps.metrics.analysisFindings.inc({ rule: f.rule, severity: f.severity });
    const shown = {
      syntaxOk: report.syntaxOk,
      hasWrites: report.hasWrites,
      hasReads: report.hasReads,
      risk: report.risk,
      findings: report.findings.map((f) => ({ ...f })),
      writes: (report.writeSites ?? []).map((w) => ({ ...w, pvs: [...w.pvs] })),
      mode: policy.mode,
      approvalRequired: policy.approvalRequired,
      approvalReason: policy.approvalReason,
      analyzer: deps.analyzer.name,
    };
    const analysis: AnalysisRecord = { ...shown, reportSha256: sha256(JSON.stringify(shown)) };
    await writeJson(env.executionFolder, 'analysis.json', { ...analysis, codeSha256: env.codeSha256 });
    const analysed = { ...env, analysis };

    if (policy.codeError) {
      const e = policy.codeError;
      const failed = withTiming(
        withError(analysed, {
          stage: 'analysis',
          errorType: e.errorType,
          kind: 'code',
          message: `Syntax error at line ${e.line}, column ${e.column}: ${e.message}`,
          failedCode: env.code,
        }),
        'analysis',
        startedAt,
        'code_error',
      );
      return regenerateOrFail(deps, failed, 'generation', 'analysis');
    }
    if (policy.refusal) {
      return endRequest(
        deps,
        { env: analysed, stage: 'analysis', startedAt },
        { status: 'rejected', reason: policy.refusal.message, detail: policy.refusal.errorType },
        {
          label: 'refused',
          error: { errorType: policy.refusal.errorType, kind: 'safety', message: policy.refusal.message },
        },
      );
    }
    if (policy.approvalRequired) {
      const { default_timeout_seconds, max_timeout_seconds } = deps.config.pyexec.approval;
      const seconds = Math.min(env.request.approval_timeout_seconds ?? default_timeout_seconds, max_timeout_seconds);
      const deadline = Date.now() + seconds * 1000;
      const held = withTiming(analysed, 'analysis', startedAt, 'held');
      const holdJobId = await handoff(deps, 'approval', held, { deadline }, { delay: seconds * 1000 });
      await deps.store.setHold(env.requestId, { holdJobId, deadline });
      await deps.store.setStatus(env.requestId, 'awaiting_approval', {
        holdJobId,
        deadline,
        reason: policy.approvalReason,
        mode: policy.mode,
        risk: report.risk,
        codeSha256: env.codeSha256,
      });
      return 'held';
    }
    await handoff(deps, 'execution', withTiming(analysed, 'analysis', startedAt, 'ok'));
    return 'ok';
  });
}
