/**
 * The approver page's syntax colouring (src/approval/web/highlight.js, plain JS served to the
 * browser). What the approver reads must be exactly the code: the tokens of each line put back
 * together are that line, and the lines are CPython's (the ones the findings point at).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { numberLines } from '../../../src/approval/held-view.js';

type Lines = Array<Array<[string, string]>>;
const { highlightPython } = (await import(new URL('../../../src/approval/web/highlight.js', import.meta.url).href)) as {
  highlightPython: (code: string) => Lines;
};

const texts = (lines: Lines) => lines.map((l) => l.map(([, t]) => t).join(''));

function pythonFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? pythonFiles(p) : p.endsWith('.py') ? [p] : [];
  });
}

describe('syntax colouring for approvers', () => {
  it('gives every line back character for character, on the lines CPython counts (every fixture program)', () => {
    const files = pythonFiles(path.resolve('test/fixtures/python'));
    assert.ok(files.length > 100);
    for (const file of files) {
      const code = readFileSync(file, 'utf8');
      assert.deepEqual(
        texts(highlightPython(code)),
        numberLines(code, []).map((l) => l.text),
        file,
      );
    }
  });

  it('keeps tricky text whole: CRLF and CR breaks, strings over lines, unterminated strings, a lone quote', () => {
    const code = "a = '''x\r\ny'''\rb = 'open\nc = \"q\\\"\" # c'\n\n'";
    assert.deepEqual(
      texts(highlightPython(code)),
      numberLines(code, []).map((l) => l.text),
    );
  });

  it('colours keywords, strings, comments, numbers, builtins, definitions and calls', () => {
    const [imp, , def, call] = highlightPython(
      "from epics import caput\n\ndef ramp(x):  # go\n    caput('MAG:QF1', 1.5e-3, wait=True); print(len(x))\n",
    );
    const kinds = (line: Array<[string, string]> | undefined) => line!.filter(([c]) => c).map(([c, t]) => `${c}:${t}`);
    assert.deepEqual(kinds(imp), ['kw:from', 'kw:import']);
    assert.deepEqual(kinds(def), ['kw:def', 'def:ramp', 'com:# go']);
    assert.deepEqual(kinds(call), ['call:caput', "str:'MAG:QF1'", 'num:1.5e-3', 'kw:True', 'bi:print', 'bi:len']);
  });
});
