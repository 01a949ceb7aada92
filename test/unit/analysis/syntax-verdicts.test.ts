import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { createAnalyzer } from '../../../src/analysis/index.js';
import { parseConfig } from '../../../src/config.js';
import { pythonExecutable } from '../../../src/python-env.js';

// The oracle is CPython itself: compile(code, f, 'exec') on the same text, run once for the table.
interface Case {
  name: string;
  code: string;
  expect: 'ok' | 'error';
}
const table = JSON.parse(
  readFileSync(path.join(import.meta.dirname, '../../fixtures/python/syntax/cases.json'), 'utf8'),
) as { cases: Case[] };
const ORACLE = `
import json, sys
out = {}
for c in json.load(sys.stdin)["cases"]:
    try:
        compile(c["code"], "<oracle>", "exec")
        out[c["name"]] = None
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        is_syntax = isinstance(e, SyntaxError)
        out[c["name"]] = {"type": type(e).__name__, "msg": e.msg if is_syntax else str(e),
                          "lineno": (e.lineno or 0) if is_syntax else 0, "offset": (e.offset or 0) if is_syntax else 0}
print(json.dumps(out))
`;
const oracle = JSON.parse(
  execFileSync(pythonExecutable(), ['-c', ORACLE], { input: JSON.stringify(table), encoding: 'utf8' }),
) as Record<string, { type: string; msg: string; lineno: number; offset: number } | null>;
const analyzer = createAnalyzer(parseConfig({}));
after(() => analyzer.close());

describe("syntax verdicts equal CPython 3.11's compile(code, f, 'exec')", () => {
  it('covers programs CPython accepts and rejects, including rejections a tolerant parser accepts', () => {
    assert.ok(table.cases.filter((c) => c.expect === 'ok').length >= 30);
    assert.ok(table.cases.filter((c) => c.expect === 'error').length >= 60);
    for (const c of table.cases)
      assert.equal(oracle[c.name] === null, c.expect === 'ok', `table out of date: ${c.name}`);
  });

  for (const c of table.cases) {
    it(`${c.expect === 'ok' ? 'accepts' : 'rejects'} ${c.name} as CPython does`, async () => {
      const report = await analyzer.analyze(c.code);
      const expected = oracle[c.name];
      if (expected === null || expected === undefined) {
        assert.equal(report.syntaxOk, true, JSON.stringify(report.syntaxError));
        assert.equal(report.syntaxError, undefined);
        return;
      }
      assert.equal(report.syntaxOk, false);
      assert.deepEqual(
        {
          type: report.syntaxError?.errorName,
          msg: report.syntaxError?.message,
          lineno: report.syntaxError?.line,
          offset: expected.offset === 0 ? 0 : (report.syntaxError?.column ?? -1) + 1,
        },
        expected,
      );
      const finding = report.findings.find((f) => f.rule === 'syntax');
      assert.ok(finding, 'the syntax error is also a finding');
      assert.equal(finding.line, expected.lineno);
    });
  }
});
