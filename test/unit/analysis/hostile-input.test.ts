import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import {
  AnalysisTimeoutError,
  CodeTooLargeError,
  createAnalyzer,
  PythonAnalyzer,
  PythonHelper,
} from '../../../src/analysis/index.js';
import { patternsFromConfig } from '../../../src/analysis/patterns.js';
import { parseConfig } from '../../../src/config.js';

const config = parseConfig({});
const analyzer = createAnalyzer(config);
after(() => analyzer.close());

/** Runs fn and fails when it takes longer than ms. */
async function within<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const value = await fn();
  assert.ok(Date.now() - started < ms, `took ${Date.now() - started} ms (limit ${ms})`);
  return value;
}

describe('hostile input', () => {
  it('rejects 201 nested parentheses as CPython does', async () => {
    const r = await within(5000, () => analyzer.analyze(`x = ${'('.repeat(201)}1${')'.repeat(201)}\n`));
    assert.equal(r.syntaxOk, false);
    assert.match(r.syntaxError!.message, /too many nested parentheses/);
  });

  it('answers a 100,000-deep expression chain with a clear verdict', async () => {
    const r = await within(10_000, () => analyzer.analyze(`x = ${'-'.repeat(100_000)}1\n`));
    assert.equal(r.syntaxOk, false);
    assert.ok(r.syntaxError!.message.length > 0);
  });

  it('never calls a write safe because the expression around it is deep', async () => {
    for (const terms of [1000, 1500, 2500, 4000]) {
      const code = `import epics\nx = ${Array(terms).fill('a').join(' + ')}\nepics.caput('SR:X', 1)\n`;
      const r = await within(10_000, () => analyzer.analyze(code));
      if (r.syntaxOk) assert.equal(r.hasWrites, true, `${terms} terms`);
      else assert.match(r.syntaxError!.errorName ?? '', /RecursionError|MemoryError/, `${terms} terms`);
    }
  });

  it('refuses a 5 MB program with CodeTooLargeError before sending it to the helper', async () => {
    const code = 'x = 1\n'.repeat(900_000);
    await within(2000, () => assert.rejects(analyzer.analyze(code), CodeTooLargeError));
  });

  it('gives binary garbage a syntax verdict', async () => {
    const garbage = randomBytes(64 * 1024).toString('utf8');
    const r = await within(5000, () => analyzer.analyze(garbage));
    assert.equal(r.syntaxOk, false);
    assert.ok(r.syntaxError!.message.length > 0);
  });

  it('reports an unterminated string with its line and column', async () => {
    const r = await analyzer.analyze("import epics\nname = 'SR:X\nepics.caput(name, 1)\n");
    assert.equal(r.syntaxOk, false);
    assert.equal(r.syntaxError!.line, 2);
    assert.equal(r.syntaxError!.column, 7);
    assert.match(r.syntaxError!.message, /unterminated string literal/);
  });

  it('times out a slow analysis, restarts the helper, and answers the next request', async () => {
    const helper = new PythonHelper({ timeoutMs: 30 });
    const slow = new PythonAnalyzer({ patterns: patternsFromConfig(config), helper });
    try {
      const big = 'import epics\n' + 'epics.caput("SR:X", 1)\n'.repeat(60_000);
      await assert.rejects(slow.analyze(big), AnalysisTimeoutError);
      const fast = new PythonAnalyzer({ patterns: patternsFromConfig(config), helper: new PythonHelper() });
      const r = await fast.analyze('x = 1\n');
      await fast.close();
      assert.equal(r.syntaxOk, true);
      const startsBefore = helper.starts;
      await assert.rejects(slow.analyze(big), AnalysisTimeoutError);
      assert.equal(helper.starts, startsBefore + 1, 'a fresh helper was started after the kill');
    } finally {
      await helper.close();
    }
  });

  it('survives the helper being killed from outside', async () => {
    const own = createAnalyzer(config);
    try {
      await own.analyze('x = 1\n');
      const pids = execPids();
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      const r = await own.analyze("import epics\nepics.caput('SR:X', 1)\n");
      assert.equal(r.hasWrites, true);
    } finally {
      await own.close();
    }
  });
});

/** The helper processes this test process started (children running the analysis server). */
function execPids(): number[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes('pyexec_runtime.analysis.server'))
    .map((l) => Number.parseInt(l.trim(), 10));
}
