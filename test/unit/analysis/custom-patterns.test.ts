import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createAnalyzer } from '../../../src/analysis/index.js';
import { parseConfig } from '../../../src/config.js';
import { ConfigError } from '../../../src/errors.js';

const extend = createAnalyzer(
  parseConfig({
    control_system: { patterns: { epics: { write: ['facility_set\\s*\\('], read: ['facility_get\\('] } } },
  }),
);
const override = createAnalyzer(
  parseConfig({ control_system: { patterns: { epics: { write: ['facility_set\\s*\\('], mode: 'override' } } } }),
);
const otherType = createAnalyzer(
  parseConfig({ control_system: { type: 'tango', patterns: { epics: { write: ['facility_set\\s*\\('] } } } }),
);
after(async () => {
  await Promise.all([extend.close(), override.close(), otherType.close()]);
});

describe('configured control-system patterns', () => {
  it('extend the built-in detection', async () => {
    const r = await extend.analyze("import epics\nfacility_set('A', 1)\nepics.caput('B', 2)\n");
    assert.equal(r.hasWrites, true);
    assert.deepEqual(
      [...(r.detectedPatterns?.writes ?? [])].sort(),
      ['epics.caput', 'pattern:facility_set\\s*\\('].sort(),
    );
    const f = r.findings.find((x) => x.rule === 'custom-write');
    assert.ok(f);
    assert.equal(f.line, 2);
    assert.equal(f.column, 0);
    assert.equal(f.source, "facility_set('A', 1)");
  });

  it('add reads too', async () => {
    const r = await extend.analyze("v = facility_get('A')\n");
    assert.equal(r.hasReads, true);
    assert.equal(r.hasWrites, false);
  });

  it('replace the built-in detection with mode: override', async () => {
    const builtin = await override.analyze("import epics\nepics.caput('B', 2)\n");
    assert.equal(builtin.hasWrites, false);
    const custom = await override.analyze("facility_set('A', 1)\n");
    assert.equal(custom.hasWrites, true);
  });

  it('never match inside comments or strings', async () => {
    const r = await extend.analyze("# facility_set('A', 1)\ndoc = \"facility_set('A', 1)\"\n");
    assert.equal(r.hasWrites, false, JSON.stringify(r.findings));
  });

  it('apply only to the configured control-system type', async () => {
    const r = await otherType.analyze("facility_set('A', 1)\n");
    assert.equal(r.hasWrites, false);
    assert.equal(r.controlSystemType, 'tango');
  });

  it('fail the config load when a pattern is not a valid regex', () => {
    assert.throws(
      () => parseConfig({ control_system: { patterns: { epics: { write: ['caput(('] } } } }),
      (err: unknown) => err instanceof ConfigError && /invalid regex/.test(err.message),
    );
  });
});

describe('a configured pattern that backtracks without end', () => {
  // (a+)+b on a long run of `a` with no b: exponential backtracking in any backtracking engine.
  const config = parseConfig({
    control_system: { patterns: { epics: { write: ['(a+)+b'], read: ['facility_get\\('] } } },
  });
  const code = `${'a'.repeat(40)} = facility_get('X')\nresults = {}\n`;

  it('counts as a match after its time, while the event loop keeps running', async () => {
    const analyzer = createAnalyzer(config, { patternTimeoutMs: 300 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    try {
      const r = await analyzer.analyze(code);
      assert.ok(ticks >= 5, `the event loop ran only ${ticks} timer callbacks during the analysis`);
      assert.equal(r.hasWrites, true, 'an unfinished write pattern is never a silent pass');
      const slow = r.findings.find((f) => f.rule === 'custom-write');
      assert.ok(slow);
      assert.equal(slow.severity, 'high');
      assert.match(slow.message, /did not finish within 300 ms/);
      assert.ok(
        r.findings.some((f) => f.rule === 'custom-read' && f.line === 1),
        'the next pattern still ran',
      );
      const other = createAnalyzer(parseConfig({ control_system: { patterns: { epics: { read: ['b'] } } } }));
      const again = await other.analyze('b = 1\n');
      await other.close();
      assert.equal(again.hasReads, true, 'a fresh pattern thread answers after the timeout');
    } finally {
      clearInterval(timer);
      await analyzer.close();
    }
  });
});
