/**
 * `pyexec approver serve` as its own process and `pyexec approvals …` as real CLI processes against
 * it, on a real Redis with a fleet and a soft IOC: what unit tests cannot show is that the commands,
 * flags, environment variables, the y/N prompt and exit codes work end to end, with the same token
 * auth as the API; that a held job is named by hold job id, request id or thread id; and that a
 * refusal (401, 403, 409) says what to do next and comes before any listing of the job.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ApproverClient } from '../../src/approval/http/client.js';
import { createToken } from '../../src/approval/tokens.js';
import { type SoftIoc, startSoftIoc } from '../../src/epics/soft-ioc.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';

const MAIN = path.resolve('src/cli/main.ts');
const alice = createToken('alice', 'approver');
const victor = createToken('victor', 'viewer');

let bed: TestBed;
let ioc: SoftIoc;
let server: ChildProcess;
let url: string;

/** Runs `pyexec …` with the approver URL in the environment; resolves with its output and exit code. */
function pyexec(
  args: string[],
  env: Record<string, string> = {},
  input = '',
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', MAIN, ...args],
      {
        env: {
          ...process.env,
          PYEXEC_APPROVER_URL: url,
          PYEXEC_APPROVER_TOKEN: '',
          PYEXEC_LOG_LEVEL: 'silent',
          ...env,
        },
        timeout: 60_000,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    // What a person types at the y/N prompt (stdin ends after it: no answer is no).
    child.stdin!.end(input);
  });
}

const CODE =
  "from epics import caput\ncaput('MAG:QF1:CURRENT:SP', 0.25, wait=True, timeout=20)\nresults = {'payload': approval_payload}\n";

before(async () => {
  ioc = await startSoftIoc({ readOnlyEndpoint: true });
  await ioc.caput('MAG:QF1:CURRENT:SP', 0.125);
  const modes = { read_only: { environment: ioc.readOnlyEnv! }, write_access: { environment: ioc.env } };
  bed = await testBed({
    approval: { global_mode: 'all_capabilities' },
    execution: { generators: { mock: { code: CODE } }, modes },
  });
  await bed.startFleet();
  const configFile = path.join(bed.config.pyexec.execution_root, 'approver.yml');
  writeFileSync(
    configFile,
    stringify({
      execution: { modes },
      pyexec: { redis: { prefix: bed.config.pyexec.redis.prefix }, approver: { tokens: [alice.entry, victor.entry] } },
    }),
  );
  server = spawn(
    process.execPath,
    ['--import', 'tsx', MAIN, '--config', configFile, '--redis', bed.redisUrl, 'approver', 'serve', '--port', '0'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, PYEXEC_LOG_LEVEL: 'silent' },
    },
  );
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    server.once('exit', (code) => reject(new Error(`approver serve exited with ${code}: ${out}`)));
  });
});
after(async () => {
  if (server.exitCode === null) {
    const exited = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  await bed.close();
  await ioc?.stop();
  await stopRedis();
});

let requestId: string | undefined;
afterEach(async () => {
  // Leave no held job behind for the next test's `list`.
  const hold = requestId ? (await bed.client.status(requestId))?.hold : undefined;
  if (hold) await new ApproverClient({ url, token: alice.token }).reject(hold.holdJobId, { reason: 'test cleanup' });
  requestId = undefined;
});

async function hold(extra: Record<string, unknown> = {}): Promise<string> {
  ({ requestId } = await bed.client.submit(sampleRequest(extra)));
  const res = await bed.client.wait(requestId!, { timeoutMs: 60_000, returnOnApproval: true });
  assert.equal(res.kind, 'approval_required');
  return res.kind === 'approval_required' ? res.holdJobId : '';
}

async function finished() {
  const res = await bed.client.wait(requestId!, { timeoutMs: 60_000 });
  assert.equal(res.kind, 'finished');
  return res.kind === 'finished' ? res.response : (undefined as never);
}

describe('pyexec approvals against `pyexec approver serve`', () => {
  it('lists, shows and approves (with a payload) a held job; the audit names alice and the CLI', async () => {
    const holdJobId = await hold();
    const token = { PYEXEC_APPROVER_TOKEN: alice.token };
    const list = await pyexec(['approvals', 'list'], token);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(holdJobId));

    const show = await pyexec(['approvals', 'show', holdJobId, '--json'], token);
    const shown = JSON.parse(show.stdout);
    assert.equal(shown.code, CODE);
    const text = await pyexec(['approvals', 'show', holdJobId], token);
    assert.match(text.stdout, /! 2 {2}caput\('MAG:QF1:CURRENT:SP', 0\.25/);
    assert.match(text.stdout, /line 2 +MAG:QF1:CURRENT:SP +<- 0\.25 +now 0\.125/);
    assert.match(text.stdout, new RegExp(`approve with: pyexec approvals approve ${holdJobId}`));

    const approve = await pyexec(
      [
        'approvals',
        'approve',
        holdJobId,
        '--code-sha256',
        shown.codeSha256,
        '--payload',
        '{"ticket":"OPS-7"}',
        '--yes',
      ],
      token,
    );
    assert.equal(approve.code, 0, approve.stderr);
    assert.match(approve.stdout, /approved .* as alice/);
    const r = await finished();
    assert.equal(r.status, 'succeeded');
    assert.deepEqual(r.results, { payload: { ticket: 'OPS-7' } });

    const audit = await pyexec(['approvals', 'audit', '--json'], token);
    const entry = JSON.parse(audit.stdout).entries.find((e: { holdJobId: string }) => e.holdJobId === holdJobId);
    assert.equal(entry.approver, 'alice');
    assert.equal(entry.source, 'cli');
    assert.equal(entry.codeSha256, shown.codeSha256);
  });

  it('rejects with a reason (token from a file); the request ends rejected with it', async () => {
    const holdJobId = await hold();
    const tokenFile = path.join(bed.config.pyexec.execution_root, 'alice.token');
    writeFileSync(tokenFile, `${alice.token}\n`);
    const res = await pyexec(['approvals', '--token-file', tokenFile, 'reject', holdJobId, '--reason', 'beam is on']);
    assert.equal(res.code, 0, res.stderr);
    const r = await finished();
    assert.equal(r.status, 'rejected');
    assert.equal(r.reason, 'beam is on');
  });

  it('refuses a viewer, a wrong or a missing token (exit 2) before showing the job, says how to get a token, and the job stays held', async () => {
    const holdJobId = await hold();
    const viewer = await pyexec(['approvals', 'approve', holdJobId], { PYEXEC_APPROVER_TOKEN: victor.token }, 'y\n');
    assert.equal(viewer.code, 2);
    assert.match(viewer.stderr, /403 victor \(viewer\) may not decide/);
    assert.match(viewer.stderr, /next: .*pyexec approver new-token --name <you> --role approver/);
    assert.doesNotMatch(viewer.stderr, /MAG:QF1|caput|writes/, 'no listing before the refusal');
    const wrong = await pyexec(['approvals', '--token', 'not-a-token', 'reject', holdJobId, '--reason', 'x']);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /401/);
    assert.match(wrong.stderr, /pyexec approver new-token --name <you>.*PYEXEC_APPROVER_TOKEN/);
    const none = await pyexec(['approvals', 'list']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no approver token: get a token with `pyexec approver new-token/);
    assert.equal((await bed.client.status(requestId!))?.status, 'awaiting_approval');
    const list = await pyexec(['approvals', 'list', '--json'], { PYEXEC_APPROVER_TOKEN: victor.token });
    assert.deepEqual(
      JSON.parse(list.stdout).held.map((h: { holdJobId: string }) => h.holdJobId),
      [holdJobId],
    );
  });

  it('approves by request id after a y at the prompt, which follows the write summary', async () => {
    await hold({ thread_id: 'cli-thread-y' });
    const res = await pyexec(['approvals', 'approve', requestId!], { PYEXEC_APPROVER_TOKEN: alice.token }, 'y\n');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /thread cli-thread-y/);
    assert.match(res.stderr, /writes \(1\):\n {2}line 2 +MAG:QF1:CURRENT:SP +<- 0\.25/);
    assert.match(res.stderr, /Approve exactly this code and run it\? \[y\/N\] y/);
    assert.ok(res.stderr.indexOf('MAG:QF1') < res.stderr.indexOf('[y/N]'), 'the summary comes before the question');
    assert.match(res.stdout, /approved .* as alice/);
    assert.equal((await finished()).status, 'succeeded');
  });

  it('approves by thread id with --yes, without asking', async () => {
    await hold({ thread_id: 'cli-thread-yes' });
    const res = await pyexec(['approvals', 'approve', 'cli-thread-yes', '--yes'], {
      PYEXEC_APPROVER_TOKEN: alice.token,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(res.stderr, /\[y\/N\]/);
    assert.match(res.stderr, /MAG:QF1:CURRENT:SP +<- 0\.25/);
    assert.equal((await finished()).status, 'succeeded');
  });

  it('approves nothing on N, or on no answer (exit 1), and the job stays held', async () => {
    const holdJobId = await hold();
    for (const input of ['n\n', '']) {
      const res = await pyexec(['approvals', 'approve', holdJobId], { PYEXEC_APPROVER_TOKEN: alice.token }, input);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /not approved/);
    }
    assert.equal((await bed.client.status(requestId!))?.status, 'awaiting_approval');
    const audit = await new ApproverClient({ url, token: alice.token }).audit({ text: requestId! });
    assert.deepEqual(audit, []);
  });

  it('refuses (409) a job with nothing to decide, before any listing, and says where to look', async () => {
    const holdJobId = await hold();
    await new ApproverClient({ url, token: alice.token }).reject(holdJobId, { reason: 'no' });
    requestId = undefined;
    const res = await pyexec(['approvals', 'approve', holdJobId, '--yes'], { PYEXEC_APPROVER_TOKEN: alice.token });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /409 job .* is rejected \(rejected by alice: no\); there is nothing to approve/);
    assert.match(res.stderr, /next: .*pyexec approvals show/);
    assert.doesNotMatch(res.stderr, /MAG:QF1|caput/);
    const missing = await pyexec(['approvals', 'show', 'no-such-thread'], { PYEXEC_APPROVER_TOKEN: alice.token });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /404 .*\n {2}next: list the held jobs with `pyexec approvals list`/);
  });

  it('serves /metrics with the held-jobs gauge', async () => {
    await hold();
    const text = await (await fetch(`${url}/metrics`)).text();
    assert.match(text, /^pyexec_approval_held_jobs 1$/m);
  });
});
