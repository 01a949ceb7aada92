/**
 * The approver's current-value reader against a real soft IOC: it reads through the Channel Access
 * settings it is given (the read-only endpoint) with a real pyepics child, and a PV nobody serves or
 * an IOC that is gone ends in a failed reading within the timeout, never a hang. Names that are not
 * PV names are refused without starting anything.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PvReader } from '../../src/approval/pv-reader.js';
import { caEnv, type SoftIoc, startSoftIoc } from '../../src/epics/soft-ioc.js';
import { freePort } from '../../src/free-port.js';

let ioc: SoftIoc;

before(async () => {
  ioc = await startSoftIoc({ readOnlyEndpoint: true });
  await ioc.caput('MAG:QD1:CURRENT:SP', 0.625);
});
after(async () => {
  await ioc?.stop();
});

describe('reading current PV values for approvers', () => {
  it('reads through the read-only endpoint it is given, and caches briefly', async () => {
    const reader = new PvReader({ env: ioc.readOnlyEnv!, cacheMs: 60_000 });
    const first = await reader.read(['MAG:QD1:CURRENT:SP', 'BEAM:CURRENT']);
    const qd1 = first['MAG:QD1:CURRENT:SP']!;
    assert.ok(qd1.ok, JSON.stringify(qd1));
    assert.equal(qd1.ok && qd1.value, 0.625);
    assert.ok(first['BEAM:CURRENT']!.ok);
    await ioc.caput('MAG:QD1:CURRENT:SP', 0.75);
    const cached = await reader.read(['MAG:QD1:CURRENT:SP']);
    assert.equal(cached['MAG:QD1:CURRENT:SP']!.at, qd1.at, 'served from the cache');
    const fresh = await new PvReader({ env: ioc.readOnlyEnv! }).read(['MAG:QD1:CURRENT:SP']);
    assert.equal(fresh['MAG:QD1:CURRENT:SP']!.ok && fresh['MAG:QD1:CURRENT:SP']!.value, 0.75);
  });

  it('fails a PV nobody serves, and a whole read when no IOC answers, within its timeout', async () => {
    const reader = new PvReader({ env: ioc.readOnlyEnv!, timeoutMs: 3000 });
    const mixed = await reader.read(['NO:SUCH:PV', 'MAG:QD1:CURRENT:SP']);
    assert.equal(mixed['NO:SUCH:PV']!.ok, false);
    assert.ok(mixed['MAG:QD1:CURRENT:SP']!.ok);

    const port = await freePort();
    const nowhere = new PvReader({ env: caEnv(port), timeoutMs: 3000 });
    const started = Date.now();
    const none = await nowhere.read(['MAG:QD1:CURRENT:SP']);
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    const r = none['MAG:QD1:CURRENT:SP']!;
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, /no answer/);
  });

  it('refuses names that are not PV names without asking anyone', async () => {
    const reader = new PvReader({ env: {} });
    const r = await reader.read(['bad name; rm -rf /', '--help']);
    assert.deepEqual(
      Object.values(r).map((x) => (x.ok ? 'ok' : x.error)),
      ['not a PV name', 'not a PV name'],
    );
  });
});
