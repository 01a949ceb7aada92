import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AnalysisReport, Finding } from '../../../src/analysis/index.js';
import { decidePolicy, WRITES_BLOCKED } from '../../../src/analysis/index.js';
import { type ConfigInput, parseConfig } from '../../../src/config.js';

function report(over: Partial<AnalysisReport> = {}): AnalysisReport {
  return {
    syntaxOk: true,
    hasWrites: false,
    hasReads: false,
    risk: 'low',
    findings: [],
    controlSystemType: 'epics',
    assignsResults: true,
    ...over,
  };
}
const high: Finding = { rule: 'process-spawn', severity: 'high', line: 1, column: 0, message: 'starts a process' };
const config = (doc: ConfigInput) => parseConfig(doc);
const writesOn = { control_system: { writes_enabled: true } };

describe('policy', () => {
  describe('when the code has a syntax error', () => {
    it('asks for regeneration with CPython position (1-based column) and message', () => {
      const d = decidePolicy(
        report({
          syntaxOk: false,
          syntaxError: { message: "expected ':'", line: 3, column: 14, errorName: 'SyntaxError' },
        }),
        config({}),
      );
      assert.deepEqual(d.codeError, { errorType: 'syntax', message: "SyntaxError: expected ':'", line: 3, column: 15 });
      assert.equal(d.refusal, undefined);
    });
  });

  describe('when the code writes', () => {
    it('refuses terminally while writes are disabled', () => {
      const d = decidePolicy(report({ hasWrites: true }), config({}));
      assert.deepEqual(d.refusal, { errorType: 'writes_disabled', message: WRITES_BLOCKED });
      assert.equal(d.refusal?.message, 'EPICS writes blocked by configuration');
      assert.equal(d.codeError, undefined);
    });
    it('says why when the only writes are a process or a connection, while writes are disabled', () => {
      const d = decidePolicy(
        report({ hasWrites: true, detectedPatterns: { writes: ['network'], reads: [] } }),
        config({}),
      );
      assert.equal(d.refusal?.errorType, 'writes_disabled');
      assert.equal(
        d.refusal?.message,
        'EPICS writes blocked by configuration: the code opens a network connection, which read-only execution does not allow',
      );
    });
    it('picks write_access and asks for approval in epics_writes mode when writes are enabled', () => {
      const d = decidePolicy(
        report({ hasWrites: true }),
        config({ ...writesOn, approval: { capabilities: { python_execution: { mode: 'epics_writes' } } } }),
      );
      assert.equal(d.mode, 'write_access');
      assert.equal(d.approvalRequired, true);
      assert.equal(d.refusal, undefined);
    });
    it('asks nobody when the python approval mode is disabled: the explicit setting wins over the mode default', () => {
      const d = decidePolicy(
        report({ hasWrites: true }),
        config({ ...writesOn, approval: { capabilities: { python_execution: { mode: 'disabled' } } } }),
      );
      assert.equal(d.approvalRequired, false);
      assert.equal(d.mode, 'write_access');
    });
    it("asks for approval through a mode's requires_approval when the approval mode would not", () => {
      const d = decidePolicy(
        report({ hasWrites: false }),
        config({
          ...writesOn,
          approval: { capabilities: { python_execution: { mode: 'epics_writes' } } },
          execution: { modes: { read_only: { requires_approval: true } } },
        }),
      );
      assert.equal(d.approvalRequired, true);
      assert.match(d.approvalReason, /read_only/);
    });
    it('asks nobody when approval is disabled globally', () => {
      const d = decidePolicy(
        report({ hasWrites: true }),
        config({ ...writesOn, approval: { global_mode: 'disabled' } }),
      );
      assert.equal(d.approvalRequired, false);
    });
  });

  describe('when the code only reads', () => {
    it('runs read_only without approval in epics_writes mode', () => {
      const d = decidePolicy(
        report({ hasReads: true }),
        config({ approval: { capabilities: { python_execution: { mode: 'epics_writes' } } } }),
      );
      assert.equal(d.mode, 'read_only');
      assert.equal(d.approvalRequired, false);
      assert.equal(d.refusal, undefined);
    });
    it('asks for approval in all_code mode (the default)', () => {
      assert.equal(decidePolicy(report(), config({})).approvalRequired, true);
    });
  });

  describe('when the code has high-risk findings but no writes', () => {
    it('asks for approval in epics_writes mode, naming the rules', () => {
      const d = decidePolicy(
        report({ risk: 'high', findings: [high] }),
        config({ approval: { capabilities: { python_execution: { mode: 'epics_writes' } } } }),
      );
      assert.equal(d.approvalRequired, true);
      assert.match(d.approvalReason, /process-spawn/);
      assert.equal(d.mode, 'read_only');
    });
    it('does not ask when python approval is disabled', () => {
      const d = decidePolicy(
        report({ risk: 'high', findings: [high] }),
        config({ approval: { capabilities: { python_execution: { mode: 'disabled' } } } }),
      );
      assert.equal(d.approvalRequired, false);
    });
  });

  it('treats a missing results assignment as a warning, not a failure', () => {
    const d = decidePolicy(
      report({
        assignsResults: false,
        findings: [{ rule: 'results-missing', severity: 'low', line: 0, column: 0, message: 'no results' }],
      }),
      config({ approval: { global_mode: 'disabled' } }),
    );
    assert.equal(d.codeError, undefined);
    assert.equal(d.refusal, undefined);
    assert.equal(d.approvalRequired, false);
  });
});
