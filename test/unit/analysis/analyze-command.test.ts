import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { analyzeCommand } from '../../../src/cli/analyze-command.js';
import { parseConfig } from '../../../src/config.js';

const config = parseConfig({});
const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-analyze-'));
const program = "from epics import caput as w\nw('SR:X', 1)\nresults = {}\n";
const file = path.join(dir, 'prog.py');
writeFileSync(file, program);

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('pyexec analyze', () => {
  it('prints exactly the documented JSON keys, in order, with --json', async () => {
    const out = capture();
    const code = await analyzeCommand(file, { json: true, config, stdout: out.stream });
    assert.equal(code, 0);
    const json = JSON.parse(out.text());
    assert.deepEqual(Object.keys(json), ['syntax_ok', 'has_writes', 'has_reads', 'risk', 'findings']);
    assert.equal(json.has_writes, true);
    assert.deepEqual(Object.keys(json.findings[0]), ['rule', 'severity', 'line', 'column', 'message']);
    assert.equal(json.findings[0].rule, 'epics-write');
  });

  it('reads the program from standard input when FILE is -', async () => {
    const out = capture();
    const code = await analyzeCommand('-', { json: true, config, stdin: Readable.from([program]), stdout: out.stream });
    assert.equal(code, 0);
    assert.equal(JSON.parse(out.text()).has_writes, true);
  });

  it('prints a readable report with the source lines without --json', async () => {
    const out = capture();
    await analyzeCommand(file, { json: false, config, stdout: out.stream });
    assert.match(out.text(), /Syntax: ok/);
    assert.match(out.text(), /writes yes \(epics\.caput\)/);
    assert.match(out.text(), /\s+2 \| w\('SR:X', 1\)/);
  });

  it('shows a syntax error with a caret under CPython’s column', async () => {
    const bad = path.join(dir, 'bad.py');
    writeFileSync(bad, 'x = (1,\n');
    const out = capture();
    assert.equal(await analyzeCommand(bad, { json: false, config, stdout: out.stream }), 0);
    assert.match(out.text(), /Syntax: SyntaxError at line 1, column 5: '\(' was never closed/);
    assert.match(out.text(), /\n {12}\^/);
  });

  it('exits 2 with a clear message when the file cannot be read', async () => {
    const err = capture();
    const code = await analyzeCommand(path.join(dir, 'missing.py'), { json: true, config, stderr: err.stream });
    assert.equal(code, 2);
    assert.match(err.text(), /cannot read .*missing\.py/);
  });
});
