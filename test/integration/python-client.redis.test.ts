/**
 * The Python client (python/pyexec_client: sync, async, and the Osprey adapter) against a running
 * fleet: a real Redis, the workers (scripted programs by execution_folder_name, local executor), a
 * soft IOC for the EPICS write that is held, the producer HTTP API and the approver API. Runs the
 * package's pytest suite in its own virtualenv (.venv/client, made by scripts/setup.sh), which
 * covers success, streaming, approval required -> approved through the approver API -> resumed
 * by thread id, rejection, cancel, and the adapter's Osprey shapes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ProducerApi, startProducerApi } from '../../src/api/producer-server.js';
import { type ApproverApi, startApproverApi } from '../../src/approval/http/server.js';
import { createToken } from '../../src/approval/tokens.js';
import { type SoftIoc, startSoftIoc } from '../../src/epics/soft-ioc.js';
import { projectRoot } from '../../src/python-env.js';
import { stopRedis, type TestBed, testBed } from '../support/harness.js';
import { ScriptedGenerator } from '../support/scripted-generator.js';

const python = path.join(projectRoot, '.venv', 'client', 'bin', 'python');
const producer = createToken('py-agent', 'producer');
const person = createToken('alice', 'approver');
let ioc: SoftIoc;
let bed: TestBed;
let api: ProducerApi;
let approver: ApproverApi;

before(async () => {
  ioc = await startSoftIoc();
  bed = await testBed({
    approval: { global_mode: 'selective', capabilities: { python_execution: { enabled: true, mode: 'epics_writes' } } },
    execution: {
      modes: { read_only: { environment: ioc.env }, write_access: { environment: ioc.env } },
      container: { notebook_base_url: 'http://jupyter.test:8888/lab/tree/executions' },
    },
    pyexec: { approver: { tokens: [producer.entry, person.entry] } },
  });
  await bed.startFleet({ generator: new ScriptedGenerator() });
  api = await startProducerApi({ config: bed.config, redisUrl: bed.redisUrl, port: 0 });
  approver = await startApproverApi({ config: bed.config, redisUrl: bed.redisUrl, port: 0, pvReader: null });
});
after(async () => {
  await api?.close();
  await approver?.close();
  await bed?.close();
  await ioc?.stop();
  await stopRedis();
});

function pytest(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(python, ['-m', 'pytest', '-q', '-rA', '-p', 'no:cacheprovider', ...args], {
      cwd: path.join(projectRoot, 'python', 'pyexec_client'),
      env: {
        PATH: process.env['PATH'] ?? '',
        PYEXEC_API_URL: api.url,
        PYEXEC_PRODUCER_TOKEN: producer.token,
        PYEXEC_APPROVER_URL: approver.url,
        PYEXEC_APPROVER_TOKEN: person.token,
      },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('the Python client against a running fleet', () => {
  it('is installed in its own virtualenv by scripts/setup.sh', () => {
    assert.ok(existsSync(python), `${python} is missing: run scripts/setup.sh`);
  });

  for (const file of ['tests/test_client.py', 'tests/test_osprey.py']) {
    it(`passes ${file}`, { timeout: 300_000 }, async () => {
      const { code, out } = await pytest([file]);
      assert.equal(code, 0, out);
      const summary = out.trim().split('\n').at(-1) ?? '';
      assert.match(summary, /\d+ passed/, out);
      assert.doesNotMatch(summary, /skipped|failed|error/, out);
    });
  }
});
