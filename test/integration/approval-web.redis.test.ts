/**
 * The approver web page in a real headless browser (Debian's chromium driven by playwright-core)
 * against the approver API, a real Redis, the fleet and a soft IOC with its read-only endpoint.
 * Covers what no unit test can: nothing shows before sign-in; the list says who asked, when, for
 * which thread; the job view leads with the writes (PV, value) and each PV's current value read
 * live through the read-only path; approving asks a confirmation that names the PVs; after the
 * approval the page follows the run to its result and moves on; the history lists the decision;
 * a request cancelled by its producer leaves the list at once and a stale page's approval of it is
 * refused and not recorded; the layout does not overflow at 800 px. The steps run in order on one
 * page (each builds on the last). PYEXEC_SCREENSHOTS=<dir> saves screenshots at 1280, 800 and
 * 3840 px there. Skipped when PYEXEC_BROWSER_TESTS=0 (scripts/setup.sh then installs no chromium).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { ApproverClient } from '../../src/approval/http/client.js';
import { type ApproverApi, startApproverApi } from '../../src/approval/http/server.js';
import { createToken } from '../../src/approval/tokens.js';
import { type SoftIoc, startSoftIoc } from '../../src/epics/soft-ioc.js';
import { eventually, sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = process.env['PYEXEC_BROWSER_TESTS'] === '0' ? 'PYEXEC_BROWSER_TESTS=0' : false;
const SHOTS = process.env['PYEXEC_SCREENSHOTS'];

const alice = createToken('alice', 'approver');
const bob = createToken('bob', 'approver');
/** A magnet ramp: two setpoints written, then read back. */
const CODE = `from epics import caget, caput

# Ramp the corrector and the quadrupole to their new setpoints
caput('MAG:HCM1:CURRENT:SP', 1.25, wait=True, timeout=30)
caput('MAG:QF1:CURRENT:SP', 0.5, wait=True, timeout=30)
results = {'hcm1': caget('MAG:HCM1:CURRENT:SP', use_monitor=False, timeout=30), 'qf1': caget('MAG:QF1:CURRENT:SP', use_monitor=False, timeout=30), 'payload': approval_payload}
`;
const PVS = ['MAG:HCM1:CURRENT:SP', 'MAG:QF1:CURRENT:SP'];

let ioc: SoftIoc;
let bed: TestBed;
let api: ApproverApi;
let browser: Browser;
let page: Page;
let ramp: { requestId: string; holdJobId: string };
let second: { requestId: string; holdJobId: string };

async function hold(extra: Record<string, unknown> = {}) {
  const { requestId } = await bed.client.submit(sampleRequest(extra));
  const res = await bed.client.wait(requestId, { timeoutMs: 60_000, returnOnApproval: true });
  assert.equal(res.kind, 'approval_required', JSON.stringify(res));
  return { requestId, holdJobId: res.kind === 'approval_required' ? res.holdJobId : '' };
}
const item = (holdJobId: string, p: Page = page) =>
  p.locator(`[data-testid="held-item"][data-hold-job-id="${holdJobId}"]`);
const approver = () => new ApproverClient({ url: api.url, token: alice.token });

/** What the viewport shows (as an operator sees it), and the whole page. */
async function shot(name: string, p: Page = page) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  await p.screenshot({ path: path.join(SHOTS, `${name}-full.png`), fullPage: true });
}

async function signIn(p: Page, token: string, hash = '') {
  await p.goto(`${api.url}/${hash}`);
  await p.getByTestId('token').fill(token);
  await p.getByTestId('signin').click();
  await p.getByTestId('who').filter({ hasText: /·/ }).waitFor();
}

/** Whether an element's box lies inside its container's box (1 px of rounding allowed). */
async function inside(selector: string, container: string): Promise<{ ok: boolean; detail: string }> {
  return page.evaluate(
    ([s, c]) => {
      const a = document.querySelector(s!)!.getBoundingClientRect();
      const b = document.querySelector(c!)!.getBoundingClientRect();
      const ok = a.left >= b.left - 1 && a.right <= b.right + 1;
      return { ok, detail: `${s} [${a.left}, ${a.right}] in ${c} [${b.left}, ${b.right}]` };
    },
    [selector, container],
  );
}

describe('the approver web page', { skip }, () => {
  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (or set PYEXEC_BROWSER_TESTS=0)`);
    ioc = await startSoftIoc({ readOnlyEndpoint: true });
    assert.ok(ioc.readOnlyEnv);
    await ioc.caput('MAG:HCM1:CURRENT:SP', 0.3);
    await ioc.caput('MAG:QF1:CURRENT:SP', 0.1);
    bed = await testBed({
      approval: {
        global_mode: 'selective',
        capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } },
      },
      execution: {
        generators: { mock: { code: CODE } },
        // The page reads current values through the read-only endpoint (writes refused there).
        modes: { read_only: { environment: ioc.readOnlyEnv! }, write_access: { environment: ioc.env } },
      },
      pyexec: { approver: { tokens: [alice.entry, bob.entry] } },
    });
    await bed.startFleet();
    api = await startApproverApi({ config: bed.config, redisUrl: bed.redisUrl, port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(20_000);
  });
  after(async () => {
    await browser?.close();
    await api?.close();
    await bed?.close();
    await ioc?.stop();
    await stopRedis();
  });

  it('shows nothing but the sign-in before a token is given', async () => {
    ramp = await hold({
      task_objective: 'Ramp HCM1 to 1.25 A and QF1 to 0.5 A',
      thread_id: 'ops-thread-ramp',
      session_context: { user_id: 'agent-7' },
    });
    await page.goto(api.url);
    await page.getByTestId('token').waitFor();
    await shot('signin-1280');
    assert.equal(await page.getByTestId('detail').isVisible(), false);
    assert.equal(await page.getByTestId('held-list').isVisible(), false);
    assert.equal(await page.getByTestId('empty').isVisible(), false, 'no "No jobs are waiting" before sign-in');
    assert.equal(await page.getByText('No jobs are waiting').isVisible(), false);
    assert.equal(await page.getByText('Ramp HCM1').count(), 0, 'no job data before sign-in');
  });

  it('lists who asked, when, for which thread and request, with the risk and the deadline', async () => {
    await page.getByTestId('token').fill(alice.token);
    await page.getByTestId('signin').click();
    await page.getByTestId('who').filter({ hasText: 'alice · approver' }).waitFor();
    await page.locator('[data-testid="live"].on').waitFor();
    const text = (await item(ramp.holdJobId).textContent()) ?? '';
    assert.match(text, /agent-7/);
    assert.match(text, /submitted \d+s ago/);
    assert.match(text, /thread ops-thread-ramp/);
    assert.match(text, new RegExp(`request ${ramp.requestId.slice(0, 8)}`));
    assert.match(text, /risk (medium|high)/);
    assert.match(text, /\d+m \d\ds left/);
    assert.match(text, /writes MAG:HCM1:CURRENT:SP, MAG:QF1:CURRENT:SP/);
  });

  it('leads with what it will write: each PV and value, with its current value read live (read-only path)', async () => {
    // With one job waiting, the page opens it, and its address names it.
    await page.getByTestId('detail').filter({ hasText: 'Ramp HCM1 to 1.25 A' }).waitFor();
    assert.equal(new URL(page.url()).hash, `#job=${encodeURIComponent(ramp.holdJobId)}`);
    const rows = page.locator('[data-testid="write"]');
    await eventually(async () => ((await rows.count()) === 2 ? true : undefined), 5000, 'two write rows');
    assert.deepEqual(await page.getByTestId('write-pv').allInnerTexts(), PVS);
    assert.deepEqual(await page.getByTestId('write-value').allInnerTexts(), ['1.25', '0.5']);
    assert.deepEqual(await rows.evaluateAll((r) => r.map((x) => (x as HTMLElement).dataset['line'])), ['4', '5']);
    const hcm1 = page.locator(`[data-testid="current-value"][data-pv="${PVS[0]}"]`);
    const qf1 = page.locator(`[data-testid="current-value"][data-pv="${PVS[1]}"]`);
    await hcm1.filter({ hasText: /^0\.30*\b/ }).waitFor();
    await qf1.filter({ hasText: /^0\.10*\b/ }).waitFor();
    // The writes section comes before the code.
    const order = await page.evaluate(() => {
      const w = document.querySelector('[data-testid="writes"]')!;
      const c = document.querySelector('[data-testid="code"]')!;
      return w.compareDocumentPosition(c) & Node.DOCUMENT_POSITION_FOLLOWING;
    });
    assert.ok(order, 'the write summary is above the code');
    // The code is coloured, and the write lines are flagged.
    const flagged = page.locator('tr[data-testid="finding-line"][data-line="4"]');
    assert.match((await flagged.textContent()) ?? '', /caput\('MAG:HCM1:CURRENT:SP', 1\.25, wait=True/);
    assert.equal(await flagged.locator('.t-call', { hasText: 'caput' }).count(), 1);
    assert.equal(await flagged.locator('.t-str', { hasText: "'MAG:HCM1:CURRENT:SP'" }).count(), 1);
    assert.equal(await page.locator('tr[data-line="3"] .t-com').count(), 1, 'the comment is coloured');
    assert.equal(await page.locator('tr[data-testid="line"][data-line="1"]').count(), 1, 'the import is not flagged');
    assert.equal(await page.getByTestId('requester').textContent(), 'agent-7');
    await shot('job-1280');
  });

  it('at 800 px nothing overflows sideways: the code, the hash and the write summary wrap', async () => {
    await page.setViewportSize({ width: 800, height: 1000 });
    await page.getByTestId('sha').waitFor();
    const widths = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      code: (() => {
        const w = document.querySelector('.code-wrap')!;
        return [w.scrollWidth, w.clientWidth];
      })(),
    }));
    assert.ok(widths.page <= 800, `the page is ${widths.page} px wide at 800`);
    assert.ok(widths.code[0]! <= widths.code[1]!, `the code scrolls sideways: ${widths.code}`);
    for (const [s, c] of [
      ['[data-testid="sha"]', '[data-testid="detail"]'],
      ['tr[data-line="6"] td.src', '.code-wrap'],
      ['tr[data-line="4"] td.src', '.code-wrap'],
      ['[data-testid="writes"]', '[data-testid="detail"]'],
      ['[data-testid="approve"]', '[data-testid="detail"]'],
    ]) {
      const r = await inside(s!, c!);
      assert.ok(r.ok, r.detail);
    }
    // The long results line is shown whole (wrapped), not cut: its box is taller than one line.
    const tall = await page.evaluate(() => {
      const src = document.querySelector('tr[data-line="6"] td.src')!;
      const one = document.querySelector('tr[data-line="1"] td.src')!;
      return src.getBoundingClientRect().height > one.getBoundingClientRect().height * 1.5;
    });
    assert.ok(tall, 'the long line wraps');
    await shot('job-800');
    if (SHOTS) {
      await page.setViewportSize({ width: 3840, height: 2160 });
      await shot('job-3840');
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('approve asks a confirmation that names the PVs and values; cancelling it decides nothing', async () => {
    await page.getByTestId('approve').click();
    const dialog = page.getByTestId('confirm-dialog');
    await dialog.waitFor();
    // The PVs are read again as the confirmation opens: it says what they are now.
    await dialog.filter({ hasText: /now 0\.3\d* at .* · line 4/ }).waitFor();
    const text = (await dialog.textContent()) ?? '';
    assert.match(text, /Approve 2 write\(s\) to 2 PV\(s\)\?/);
    assert.match(text, /MAG:HCM1:CURRENT:SP ← 1\.25/);
    assert.match(text, /MAG:QF1:CURRENT:SP ← 0\.5/);
    assert.match(text, /now 0\.1\d* at .* · line 5/);
    await shot('confirm-1280');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await page.getByTestId('status').textContent(), 'waiting for a decision');
    assert.deepEqual(await approver().audit(), []);
    assert.equal(await ioc.caget(PVS[0]!), 0.3);
  });

  it('after the approval the page follows the run to its result, and moves to the next job', async () => {
    second = await hold({ task_objective: 'Ramp <b>HCM1</b> again', thread_id: 'ops-thread-two' });
    // Live: a job held after the page loaded appears without a reload; its markup-like text stays text.
    await item(second.holdJobId).waitFor();
    assert.match((await item(second.holdJobId).textContent()) ?? '', /Ramp <b>HCM1<\/b> again/);
    assert.match((await item(second.holdJobId).textContent()) ?? '', /requester not given/);

    await page.locator('#payload').evaluate((t) => ((t as HTMLTextAreaElement).value = '{"shift": "night"}'));
    await page.keyboard.press('a');
    await page.getByTestId('confirm-approve').click();
    // The decided job is followed in the tray to its end, with its results...
    const tray = page.locator(`[data-testid="tray-item"][data-request-id="${ramp.requestId}"]`);
    await tray.waitFor();
    await tray.locator('[data-step="succeeded"][data-how="end-succeeded"]').waitFor({ timeout: 60_000 });
    assert.match(
      (await tray.getByTestId('tray-result').textContent()) ?? '',
      /"hcm1":1\.25,"qf1":0\.5,"payload":\{"shift":"night"\}/,
    );
    assert.deepEqual(await tray.getByTestId('step').allInnerTexts(), ['approved', 'queued', 'executing', 'succeeded']);
    // ...while the page has moved on to the next waiting job.
    await page.getByTestId('detail').filter({ hasText: 'Ramp <b>HCM1</b> again' }).waitFor();
    assert.equal(new URL(page.url()).hash, `#job=${encodeURIComponent(second.holdJobId)}`);
    await item(ramp.holdJobId).waitFor({ state: 'detached' });
    assert.equal(await ioc.caget(PVS[0]!), 1.25);
    assert.equal(await ioc.caget(PVS[1]!), 0.5);
    await shot('after-approve-1280');

    // The decided job keeps its address: its view shows how it went (timeline and results).
    await page.goto(`${api.url}/#job=${encodeURIComponent(ramp.holdJobId)}`);
    await page.getByTestId('status').filter({ hasText: 'approved' }).waitFor();
    await page.getByTestId('results').filter({ hasText: '"hcm1": 1.25' }).waitFor();
    const events = await page
      .getByTestId('event')
      .evaluateAll((e) => e.map((x) => (x as HTMLElement).dataset['status']));
    for (const s of ['awaiting_approval', 'executing', 'succeeded']) assert.ok(events.includes(s), `${s} in ${events}`);
    assert.equal(await page.getByTestId('approve').isVisible(), false, 'no decision buttons on a decided job');
    await shot('decided-1280');
  });

  it('the history lists the decision, with who, from where and the payload, and filters by outcome and text', async () => {
    await page.keyboard.press('h');
    const row = page.locator(`[data-testid="history-row"][data-hold-job-id="${ramp.holdJobId}"]`);
    await row.waitFor();
    const text = (await row.textContent()) ?? '';
    assert.match(text, /approved/);
    assert.match(text, /alice/);
    assert.match(text, /via web/);
    assert.match(text, /Ramp HCM1 to 1\.25 A/);
    assert.match(text, /ops-thread-ramp/);
    assert.match(text, /"shift":"night"/);
    await shot('history-1280');
    await page.locator('input[name="decision"][value="approved"]').uncheck();
    await row.waitFor({ state: 'detached' });
    assert.match(
      new URL(page.url()).hash,
      /decision=rejected%2Cexpired%2Ccancelled|decision=rejected,expired,cancelled/,
    );
    await page.locator('input[name="decision"][value="approved"]').check();
    await page.getByTestId('history-search').fill('no-such-thread');
    await row.waitFor({ state: 'detached' });
    await page.getByTestId('history-search').fill('ops-thread-ramp');
    await row.waitFor();
    await page.keyboard.press('Escape');
  });

  it('a request cancelled by its producer leaves the list at once; a stale page’s approval is refused and not recorded', async () => {
    await page.goto(`${api.url}/#job=${encodeURIComponent('ops-thread-two')}`); // addressed by thread id
    await page.getByTestId('detail').filter({ hasText: 'Ramp <b>HCM1</b> again' }).waitFor();
    await item(second.holdJobId).waitFor();
    // A second page whose live updates are cut: it still shows the job as waiting when it is cancelled.
    const stale = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    stale.setDefaultTimeout(20_000);
    await stale.route('**/api/events', (route) => route.abort());
    await signIn(stale, bob.token, `#job=${second.requestId}`); // addressed by request id
    await stale.getByTestId('detail').filter({ hasText: 'Ramp <b>HCM1</b> again' }).waitFor();

    assert.equal(await bed.client.cancel(second.requestId), true);
    await item(second.holdJobId).waitFor({ state: 'detached' });
    await page.getByTestId('status').filter({ hasText: 'cancelled by its producer' }).waitFor();
    assert.equal(await page.getByTestId('approve').isVisible(), false);
    await page
      .getByTestId('banner')
      .filter({ hasText: /Cancelled by its producer/ })
      .waitFor();
    await page.getByTestId('empty').waitFor();
    await shot('cancelled-1280');

    // The stale page still offers the approve button; the API refuses the approval (409).
    await stale.getByTestId('approve').click();
    await stale.getByTestId('confirm-approve').click();
    await stale
      .getByTestId('banner')
      .filter({ hasText: /Not approved: .*cancelled by its producer/ })
      .waitFor();
    await shot('refused-1280', stale);
    await stale.close();
    const shown = await approver().show(second.holdJobId);
    await assert.rejects(
      approver().approve(second.holdJobId, { codeSha256: shown.codeSha256, analysisSha256: shown.analysisSha256 }),
      (err: Error & { status?: number }) => err.status === 409,
    );
    // The request ends cancelled now (not at its deadline), and the audit records no decision on it.
    const done = await bed.client.wait(second.requestId, { timeoutMs: 20_000 });
    assert.equal(done.kind, 'finished');
    assert.equal(done.kind === 'finished' ? done.response.status : '', 'cancelled');
    const audit = (await approver().audit()).filter((e) => e.holdJobId === second.holdJobId);
    assert.deepEqual(
      audit.map((e) => [e.decision, e.approver]),
      [['cancelled', 'system:producer']],
    );
    assert.equal(await ioc.caget(PVS[0]!), 1.25, 'nothing of the cancelled job ran');
  });

  it('keyboard: j/k move between jobs, r asks for a reason and rejects with it', async () => {
    const c = await hold({ task_objective: 'Job C', thread_id: 'ops-thread-c' });
    const d = await hold({ task_objective: 'Job D', thread_id: 'ops-thread-d' });
    await page.goto(`${api.url}/#job=${encodeURIComponent(c.holdJobId)}`);
    await page.getByTestId('detail').filter({ hasText: 'Job C' }).waitFor();
    await item(d.holdJobId).waitFor();
    await page.keyboard.press('j');
    await page.getByTestId('detail').filter({ hasText: 'Job D' }).waitFor();
    await page.keyboard.press('k');
    await page.getByTestId('detail').filter({ hasText: 'Job C' }).waitFor();
    await page.keyboard.press('r');
    const dialog = page.getByTestId('reject-dialog');
    await dialog.waitFor();
    await page.getByTestId('confirm-reject').click(); // no reason: the form refuses to submit
    assert.equal(await dialog.isVisible(), true);
    await page.getByTestId('reason').fill('not during beam time');
    await page.getByTestId('confirm-reject').click();
    await page.getByTestId('detail').filter({ hasText: 'Job D' }).waitFor();
    const r = await bed.client.wait(c.requestId, { timeoutMs: 20_000 });
    assert.equal(r.kind === 'finished' ? r.response.reason : '', 'not during beam time');
    // Decided elsewhere: bob rejects D over the API; the page drops it live.
    await new ApproverClient({ url: api.url, token: bob.token }).reject(d.holdJobId, { reason: 'duplicate' });
    await item(d.holdJobId).waitFor({ state: 'detached' });
  });
});
