/**
 * `pyexec approver serve` as its own process and `pyexec approvals …` as real CLI processes against
 * it, on a real Redis with a fleet: what unit tests cannot show is that the commands, flags,
 * environment variables and exit codes work end to end, with the same token auth as the API.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { ApproverClient } from '../../src/approval/approver-client.js';
import { createToken } from '../../src/approval/tokens.js';
import { sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';

const MAIN = path.resolve('src/cli/main.ts');
const alice = createToken('alice', 'approver');
const victor = createToken('victor', 'viewer');

let bed: TestBed;
let server: ChildProcess;
let url: string;

/** Runs `pyexec …` with the approver URL in the environment; resolves with its output and exit code. */
function pyexec(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
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
  });
}

before(async () => {
  bed = await testBed({
    approval: { global_mode: 'all_capabilities' },
    execution: { generators: { mock: { code: "results = {'payload': approval_payload}\n" } } },
  });
  await bed.startFleet();
  const configFile = path.join(bed.config.pyexec.execution_root, 'approver.yml');
  writeFileSync(
    configFile,
    stringify({
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
  await stopRedis();
});

let requestId: string | undefined;
afterEach(async () => {
  // Leave no held job behind for the next test's `list`.
  const hold = requestId ? (await bed.client.status(requestId))?.hold : undefined;
  if (hold) await new ApproverClient({ url, token: alice.token }).reject(hold.holdJobId, { reason: 'test cleanup' });
  requestId = undefined;
});

async function hold(): Promise<string> {
  ({ requestId } = await bed.client.submit(sampleRequest()));
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
    assert.equal(shown.code, "results = {'payload': approval_payload}\n");
    const text = await pyexec(['approvals', 'show', holdJobId], token);
    assert.match(text.stdout, /1 {2}results = \{'payload': approval_payload\}/);
    assert.match(text.stdout, new RegExp(`--code-sha256 ${shown.codeSha256}`));

    const approve = await pyexec(
      ['approvals', 'approve', holdJobId, '--code-sha256', shown.codeSha256, '--payload', '{"ticket":"OPS-7"}'],
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

  it('refuses a viewer, a wrong or a missing token (exit 2), and the job stays held', async () => {
    const holdJobId = await hold();
    const viewer = await pyexec(['approvals', 'approve', holdJobId], { PYEXEC_APPROVER_TOKEN: victor.token });
    assert.equal(viewer.code, 2);
    assert.match(viewer.stderr, /403/);
    const wrong = await pyexec(['approvals', '--token', 'not-a-token', 'reject', holdJobId, '--reason', 'x']);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /401/);
    const none = await pyexec(['approvals', 'list']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no approver token/);
    assert.equal((await bed.client.status(requestId!))?.status, 'awaiting_approval');
    const list = await pyexec(['approvals', 'list', '--json'], { PYEXEC_APPROVER_TOKEN: victor.token });
    assert.deepEqual(
      JSON.parse(list.stdout).held.map((h: { holdJobId: string }) => h.holdJobId),
      [holdJobId],
    );
  });

  it('serves /metrics with the held-jobs gauge', async () => {
    await hold();
    const text = await (await fetch(`${url}/metrics`)).text();
    assert.match(text, /^pyexec_approval_held_jobs 1$/m);
  });
});
