/**
 * The write summary the approver reads first: for each write call, the PV (the names the analysis
 * resolved through variables, loops and calls) and the value expression as written. Data only: the
 * verdict (findings, writes, risk) is the analysis' own and must not depend on it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createAnalyzer } from '../../../src/analysis/index.js';
import { parseConfig } from '../../../src/config.js';

const analyzer = createAnalyzer(parseConfig({}));
after(() => analyzer.close());

const sites = async (code: string) =>
  ((await analyzer.analyze(code)).writeSites ?? []).map((w) => [w.line, w.call, w.pvs, w.target, w.value]);

describe('write sites', () => {
  it('names the PV and value of caput, through a constant, a variable, a keyword and an f-string in a loop', async () => {
    const code = `from epics import caget, caput
import epics
before = caget('MAG:HCM1:CURRENT:SP')
caput('MAG:HCM1:CURRENT:SP', 1.25, wait=True)
name = 'MAG:QD1:CURRENT:SP'
epics.caput(pvname=name, value=0.5)
for m in ('QF1', 'QD1'):
    caput(f'MAG:{m}:CURRENT:SP', before * 2)
results = {}
`;
    assert.deepEqual(await sites(code), [
      [4, 'epics.caput', ['MAG:HCM1:CURRENT:SP'], "'MAG:HCM1:CURRENT:SP'", '1.25'],
      [6, 'epics.caput', ['MAG:QD1:CURRENT:SP'], 'name', '0.5'],
      [8, 'epics.caput', ['MAG:QD1:CURRENT:SP', 'MAG:QF1:CURRENT:SP'], "f'MAG:{m}:CURRENT:SP'", 'before * 2'],
    ]);
  });

  it('gives a PV handle method the receiver as written and its value (no name it cannot follow)', async () => {
    const code = "from epics import PV\npv = PV('DEVICE:STATUS')\npv.put(3, wait=True)\nresults = {}\n";
    assert.deepEqual(await sites(code), [[3, 'epics.PV.put', [], 'pv', '3']]);
  });

  it('follows a PV name passed to a function that writes it', async () => {
    const code =
      "from epics import caput\ndef ramp(pv, v):\n    caput(pv, v)\nramp('MAG:QF1:CURRENT:SP', 0.1)\nresults = {}\n";
    assert.deepEqual(await sites(code), [[3, 'epics.caput', ['MAG:QF1:CURRENT:SP'], 'pv', 'v']]);
  });

  it('has none for code that only reads, and does not change the verdict of code that writes', async () => {
    assert.deepEqual(await sites("from epics import caget\nresults = {'v': caget('BEAM:CURRENT')}\n"), []);
    const report = await analyzer.analyze("from epics import caput\ncaput('X:Y', 1)\nresults = {}\n");
    assert.equal(report.hasWrites, true);
    assert.deepEqual(
      report.findings.map((f) => [f.rule, f.line]),
      [['epics-write', 2]],
    );
  });
});
