/**
 * The approver web page in a real headless browser (Debian's chromium driven by playwright-core)
 * against the approver API, a real Redis, the fleet and a soft IOC. Covers what no unit test can:
 * the page signs in with a bearer token, lists held jobs, shows the code with its risky lines
 * highlighted and the findings, updates live when jobs arrive or are decided elsewhere, and an
 * approval clicked in the browser releases the job, whose write then reaches the IOC.
 * Skipped when PYEXEC_BROWSER_TESTS=0 (scripts/setup.sh then installs no chromium).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type ApproverApi, startApproverApi } from '../../src/approval/approver-api.js';
import { ApproverClient } from '../../src/approval/approver-client.js';
import { createToken } from '../../src/approval/tokens.js';
import { type SoftIoc, startSoftIoc } from '../../src/epics/soft-ioc.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = process.env['PYEXEC_BROWSER_TESTS'] === '0' ? 'PYEXEC_BROWSER_TESTS=0' : false;

const alice = createToken('alice', 'approver');
const bob = createToken('bob', 'approver');
const CODE = `from epics import caget, caput

before = caget('MAG:HCM1:CURRENT:SP', timeout=30)
caput('MAG:HCM1:CURRENT:SP', 1.25, wait=True, timeout=30)
results = {'before': before, 'after': caget('MAG:HCM1:CURRENT:SP', use_monitor=False, timeout=30), 'payload': approval_payload}
`;
const CAPUT_LINE = 4;

let ioc: SoftIoc;
let bed: TestBed;
let api: ApproverApi;
let browser: Browser;
let page: Page;

describe('the approver web page', { skip }, () => {
  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (or set PYEXEC_BROWSER_TESTS=0)`);
    ioc = await startSoftIoc();
    bed = await testBed({
      approval: {
        global_mode: 'selective',
        capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } },
      },
      execution: {
        generators: { mock: { code: CODE } },
        modes: { read_only: { environment: ioc.env }, write_access: { environment: ioc.env } },
      },
      pyexec: { approver: { tokens: [alice.entry, bob.entry] } },
    });
    await bed.startFleet();
    api = await startApproverApi({ config: bed.config, redisUrl: bed.redisUrl, port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage();
    page.setDefaultTimeout(20_000);
  });
  after(async () => {
    await browser?.close();
    await api?.close();
    await bed?.close();
    await ioc?.stop();
    await stopRedis();
  });

  async function hold(extra: Record<string, unknown> = {}) {
    const { requestId } = await bed.client.submit(sampleRequest(extra));
    const res = await bed.client.wait(requestId, { timeoutMs: 60_000, returnOnApproval: true });
    assert.equal(res.kind, 'approval_required');
    return { requestId, holdJobId: res.kind === 'approval_required' ? res.holdJobId : '' };
  }
  const item = (holdJobId: string) => page.locator(`[data-testid="held-item"][data-hold-job-id="${holdJobId}"]`);

  it('lists a held job, shows its findings, updates live, and approving it in the browser releases it', async (t) => {
    try {
      await scenario();
    } catch (err) {
      t.diagnostic(
        `page text at failure:\n${await page
          .locator('body')
          .textContent()
          .catch(() => '(none)')}`,
      );
      throw err;
    }
  });

  async function scenario() {
    const first = await hold({ task_objective: 'Ramp HCM1 to 1.25 A' });

    await page.goto(api.url);
    await page.getByTestId('token').fill(alice.token);
    await page.getByTestId('signin').click();
    await page.getByTestId('who').filter({ hasText: 'alice (approver)' }).waitFor();
    await item(first.holdJobId).waitFor();
    await page.locator('[data-testid="live"].on').waitFor();

    // Live: a job held after the page loaded appears without a reload; its markup-like text stays text.
    const second = await hold({ task_objective: 'Ramp <b>HCM1</b> again' });
    await item(second.holdJobId).waitFor();
    assert.match((await item(second.holdJobId).textContent()) ?? '', /Ramp <b>HCM1<\/b> again/);

    // The code, with the risky line highlighted, and the findings.
    await item(first.holdJobId).click();
    await page.getByTestId('detail').filter({ hasText: 'Ramp HCM1 to 1.25 A' }).waitFor();
    assert.equal(await page.getByTestId('mode').textContent(), 'write_access');
    const risky = page.locator(`tr[data-testid="finding-line"][data-line="${CAPUT_LINE}"]`);
    await risky.waitFor();
    assert.match((await risky.textContent()) ?? '', /caput\('MAG:HCM1:CURRENT:SP', 1\.25, wait=True/);
    assert.match((await risky.getAttribute('class')) ?? '', /\bfinding\b/);
    assert.equal(
      await page.locator('tr[data-testid="line"][data-line="1"]').count(),
      1,
      'the import line is not highlighted',
    );
    const findings = await page.getByTestId('finding').allTextContents();
    assert.ok(
      findings.some((f) => f.includes(`line ${CAPUT_LINE}`)),
      `findings: ${findings.join(' | ')}`,
    );

    // Decided elsewhere: bob rejects the second job over the API; the page drops it live.
    await new ApproverClient({ url: api.url, token: bob.token }).reject(second.holdJobId, { reason: 'duplicate' });
    await item(second.holdJobId).waitFor({ state: 'detached' });

    // Approve in the browser, with a payload.
    assert.equal(await ioc.caget('MAG:HCM1:CURRENT:SP'), 0);
    await page.locator('#payload').fill('{"shift": "night"}');
    await page.getByTestId('approve').click();
    await page.getByTestId('outcome').filter({ hasText: 'approved by alice' }).waitFor();
    await item(first.holdJobId).waitFor({ state: 'detached' });
    assert.match((await page.getByTestId('status').textContent()) ?? '', /^approved by alice/);

    const done = await bed.client.wait(first.requestId, { timeoutMs: 60_000 });
    assert.equal(done.kind, 'finished');
    if (done.kind !== 'finished') return;
    assert.equal(done.response.status, 'succeeded', JSON.stringify(done.response.error_chain));
    assert.deepEqual(done.response.results, { before: 0, after: 1.25, payload: { shift: 'night' } });
    assert.equal(await ioc.caget('MAG:HCM1:CURRENT:SP'), 1.25);
    const audit = await new ApproverClient({ url: api.url, token: alice.token }).audit();
    assert.deepEqual(
      audit.map((e) => [e.holdJobId, e.decision, e.approver, e.source]),
      [
        [second.holdJobId, 'rejected', 'bob', 'api'],
        [first.holdJobId, 'approved', 'alice', 'web'],
      ],
    );
  }
});
