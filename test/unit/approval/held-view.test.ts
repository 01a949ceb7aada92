import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { numberLines, writesOf } from '../../../src/approval/held-view.js';
import type { Finding } from '../../../src/queues/envelope.js';

const finding = (line: number, severity: Finding['severity'], rule = 'epics-write'): Finding => ({
  rule,
  severity,
  line,
  column: 0,
  message: rule,
});

describe('numbered code lines for approvers', () => {
  it('numbers lines from 1 and attaches each finding to its line with the highest severity', () => {
    const code = "from epics import caput\nx = 1\ncaput('A', x)\n";
    const lines = numberLines(code, [finding(3, 'medium', 'a'), finding(3, 'high', 'b'), finding(1, 'low', 'c')]);
    assert.deepEqual(
      lines.map((l) => [l.number, l.text, l.findings, l.severity]),
      [
        [1, 'from epics import caput', [2], 'low'],
        [2, 'x = 1', [], null],
        [3, "caput('A', x)", [0, 1], 'high'],
      ],
    );
  });

  it('leaves findings about the whole program (line 0) and out-of-range lines off the code', () => {
    const lines = numberLines('a = 1', [finding(0, 'high'), finding(9, 'high')]);
    assert.deepEqual(lines, [{ number: 1, text: 'a = 1', findings: [], severity: null }]);
  });

  it('counts lines as CPython does (\\n, \\r\\n and \\r)', () => {
    assert.deepEqual(
      numberLines('a\r\nb\rc\n\nd', []).map((l) => l.text),
      ['a', 'b', 'c', '', 'd'],
    );
  });
});

describe('the write summary an approver reads first', () => {
  it('lists each write call the analysis took apart, and each write finding it could not, in line order', () => {
    const writes = writesOf({
      writes: [
        {
          line: 5,
          column: 0,
          call: 'epics.caput',
          pvs: ['MAG:QF1:CURRENT:SP'],
          target: "'MAG:QF1:CURRENT:SP'",
          value: '0.5',
        },
        { line: 2, column: 4, call: 'epics.PV.put', pvs: [], target: 'pv', value: '3' },
      ],
      findings: [
        finding(2, 'medium'),
        finding(5, 'medium'),
        { ...finding(7, 'high', 'epics-dynamic'), message: 'possible EPICS write: setattr(...)' },
        finding(8, 'info', 'epics-read'),
      ],
    });
    assert.deepEqual(
      writes.map((w) => [w.line, w.call, w.pvs, w.value, w.resolved]),
      [
        [2, 'epics.PV.put', [], '3', true],
        [5, 'epics.caput', ['MAG:QF1:CURRENT:SP'], '0.5', true],
        [7, 'epics-dynamic', [], null, false],
      ],
    );
    assert.equal(writes[2]!.message, 'possible EPICS write: setattr(...)');
  });

  it('reads analyses recorded before write sites existed (findings only)', () => {
    assert.deepEqual(
      writesOf({ findings: [finding(3, 'medium')] }).map((w) => [w.line, w.resolved]),
      [[3, false]],
    );
  });
});
