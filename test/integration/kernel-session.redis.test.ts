/**
 * The kernel side of one run in one execute request (kernel_session._gate): the container
 * executor sends the request's code as its one cell, with the run's spec in the request's
 * metadata; the kernel sets the run up before the code and publishes the run record after it, in
 * the same request. Against a real Jupyter server with pyexec's forked, confined kernels; no Redis
 * (the file name keeps it with the kernel tests).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { KernelConnection } from '@jupyterlab/services';
import { type SpawnedJupyterServer, spawnJupyterServer } from '../../src/executors/jupyter-server.js';
import { JupyterServerClient } from '../../src/executors/kernel-client.js';
import { type CellResult, runCell } from '../../src/executors/kernel-run.js';
import { kernelModes } from '../../src/executors/pool-config.js';
import { testConfig } from '../support/harness.js';

const RUN_MIME = 'application/vnd.pyexec.run+json';
let root: string;
let server: SpawnedJupyterServer;
let client: JupyterServerClient;
const open: { id: string; kernel: KernelConnection }[] = [];

before(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'pyexec-session-'));
  server = await spawnJupyterServer({ modes: kernelModes(testConfig({})), serve: ['read_only'], executionRoot: root });
  client = new JupyterServerClient(server, { startTimeoutMs: 120_000 });
});
after(async () => {
  for (const { kernel } of open) kernel.dispose();
  await server?.stop();
  rmSync(root, { recursive: true, force: true });
});

async function freshKernel(): Promise<KernelConnection> {
  const id = await client.startKernel(kernelModes(testConfig({})).read_only.kernel_name);
  const kernel = await client.connect(id, 120_000);
  open.push({ id, kernel });
  return kernel;
}

function spec(folder: string, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    mode: 'read_only',
    folder,
    context: { beam: 'on' },
    approval_payload: null,
    limits: null,
    confinement: 'landlock',
    ...extra,
  });
}

function send(kernel: KernelConnection, code: string, runSpec?: string): Promise<CellResult> {
  return runCell(kernel, code, {
    timeoutMs: 30_000,
    signal: new AbortController().signal,
    maxOutputChars: 100_000,
    interruptGraceMs: 2000,
    interrupt: async () => {},
    recordMime: RUN_MIME,
    stopOnError: false,
    ...(runSpec ? { metadata: { pyexec_run: runSpec } } : {}),
  });
}

const marker = "open('ran.txt', 'w').write('ran')\n";
const newFolder = () => mkdtempSync(path.join(root, 'run-'));

describe('one run in one execute request', () => {
  it('sets the run up, runs the code in its folder, and reports the run in the same request', async () => {
    const kernel = await freshKernel();
    const folder = newFolder();
    const out = await send(kernel, `${marker}print(context['beam'])\nresults = {'x': 1}`, spec(folder));
    assert.equal(out.status, 'ok', JSON.stringify(out));
    assert.equal(readFileSync(path.join(folder, 'ran.txt'), 'utf8'), 'ran', 'the code ran in the run folder');
    assert.equal(out.stdout, 'on\n');
    assert.equal(out.records.length, 1);
    const record = out.records[0] as { success: boolean; results_json: string; confinement: { writable: string[] } };
    assert.equal(record.success, true);
    assert.deepEqual(JSON.parse(record.results_json), { x: 1 });
    // Narrowed to the run's folder (the layer prepared at start-up, plus this folder).
    assert.equal(record.confinement.writable[0], folder);
    // The record is not one of the notebook's outputs.
    assert.deepEqual(
      out.outputs.map((o) => o.output_type),
      ['stream'],
    );
  });

  it("reports the code's error with the user's line numbers, and the record classifies it", async () => {
    const kernel = await freshKernel();
    const out = await send(kernel, "x = 1\ny = 2\nraise ValueError('boom')", spec(newFolder()));
    assert.equal(out.status, 'error');
    assert.equal(out.error?.ename, 'ValueError');
    assert.match(out.error!.traceback.join('\n'), /----> 3 raise ValueError\('boom'\)/);
    const record = out.records[0] as { success: boolean; error_type: string; error_name: string };
    assert.deepEqual([record.success, record.error_type, record.error_name], [false, 'runtime', 'ValueError']);
  });

  it('refuses a second run on the same kernel: the set-up error is reported and the code does not run', async () => {
    const kernel = await freshKernel();
    assert.equal((await send(kernel, "results = {'first': 1}", spec(newFolder()))).status, 'ok');
    const folder = newFolder();
    const again = await send(kernel, `${marker}results = {}`, spec(folder));
    assert.equal(again.status, 'error');
    const record = again.records[0] as { setup_error?: { ename: string; evalue: string } };
    assert.match(record.setup_error?.evalue ?? '', /already ran a request/);
    assert.equal(existsSync(path.join(folder, 'ran.txt')), false, 'the code ran');
  });

  it('refuses a run for another mode, and then any code: nothing runs', async () => {
    const kernel = await freshKernel();
    const folder = newFolder();
    const out = await send(kernel, `${marker}results = {}`, spec(folder, { mode: 'write_access' }));
    const record = out.records[0] as { setup_error?: { ename: string; evalue: string } };
    assert.match(record.setup_error?.evalue ?? '', /this kernel runs read_only, the request needs write_access/);
    // A cell without a run spec is refused too (no run was set up).
    const bare = await send(kernel, marker);
    assert.equal(bare.status, 'error');
    assert.match(bare.error?.evalue ?? '', /no run is set up/);
    assert.equal(existsSync(path.join(folder, 'ran.txt')), false, 'the code ran');
  });

  it('reports request data the kernel cannot decode as RequestInputError, and the code does not run', async () => {
    const kernel = await freshKernel();
    const folder = newFolder();
    let deep = '1';
    for (let i = 0; i < 1500; i++) deep = `{"d": ${deep}}`;
    const bad = spec(folder).replace('{"beam":"on"}', deep);
    const out = await send(kernel, `${marker}results = {}`, bad);
    const record = out.records[0] as { setup_error?: { ename: string } };
    assert.equal(record.setup_error?.ename, 'RequestInputError');
    assert.equal(existsSync(path.join(folder, 'ran.txt')), false, 'the code ran');
  });
});
