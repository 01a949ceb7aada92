import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot, pythonExecutable } from '../../../src/python-env.js';

// The analysis' report on every program under test/fixtures (624 reports: each .py under two option
// sets, and the syntax cases), hashed one by one and compared with the stored digest
// test/fixtures/python/analysis-reports.sha256: a refactoring of python/pyexec_runtime/analysis must
// leave each report as it was. A change meant to change reports regenerates the digest:
//   .venv/bin/python scripts/analysis-report-hash.py --out test/fixtures/python/analysis-reports.sha256
// (scripts/analysis-report-hash.py --set all adds the standard library, pyepics and caproto: ~1 min.)

const digest = path.join(projectRoot, 'test/fixtures/python/analysis-reports.sha256');

const run = (args: string[]) =>
  new Promise<{ code: number; stdout: string }>((resolve, reject) => {
    execFile(
      pythonExecutable(),
      [path.join(projectRoot, 'scripts/analysis-report-hash.py'), ...args],
      { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '' } },
      (err, stdout) => {
        if (err && typeof err.code !== 'number') reject(err);
        else resolve({ code: err ? Number(err.code) : 0, stdout });
      },
    );
  });

describe('the analysis reports on the fixtures', () => {
  it('are those of the stored digest, program by program', async () => {
    const { code, stdout } = await run(['--check', digest]);
    assert.equal(code, 0, stdout);
    const stored = readFileSync(digest, 'utf8').trim().split('\n');
    assert.ok(stored.length > 600, `${stored.length} reports in the digest`);
    assert.match(stdout, new RegExp(`^[0-9a-f]{64}  ${stored.length} reports`));
  });

  it('a report that differs is named', async () => {
    const stored = readFileSync(digest, 'utf8').trim().split('\n');
    const altered = [`0000000000000000  ${stored[0]!.split('  ')[1]}`, ...stored.slice(1)].join('\n');
    const dir = mkdtempSync(path.join(tmpdir(), 'pyexec-digest-'));
    const tmp = path.join(dir, 'altered.sha256');
    writeFileSync(tmp, `${altered}\n`);
    try {
      const { code, stdout } = await run(['--check', tmp]);
      assert.equal(code, 1);
      assert.match(stdout, /1 reports differ/);
      assert.ok(stdout.includes(stored[0]!.split('  ')[1]!), stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
