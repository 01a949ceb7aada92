/**
 * Retention on disk as in Redis: a request run end to end on a real Redis, with an eight-second
 * retention, leaves neither its records in Redis nor its execution folder on disk once the time has
 * passed; and the pruner's rules on real folders (finished ones go after the retention, unfinished
 * ones only when no request can still be using them).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { silentLogger } from '../../src/logger.js';
import { ExecutionFolderPruner } from '../../src/store/execution-folder-pruner.js';
import { eventually, sampleRequest, stopRedis, type TestBed, testBed } from '../support/harness.js';

let bed: TestBed | undefined;
after(() => stopRedis());
afterEach(async () => {
  await bed?.close();
  bed = undefined;
});

describe('retention', () => {
  it('removes a finished request from Redis and its execution folder from disk after finished_seconds (here 8 s)', async () => {
    bed = await testBed({ pyexec: { retention: { finished_seconds: 8, prune_interval_ms: 200 } } });
    await bed.startFleet();
    const { requestId } = await bed.client.submit(sampleRequest());
    const res = await bed.client.wait(requestId, { timeoutMs: 60_000 });
    assert.equal(res.kind, 'finished');
    const folder = res.kind === 'finished' ? res.response.execution_folder : '';
    assert.ok(folder && existsSync(path.join(folder, 'response.json')), folder);
    await eventually(
      async () => ((await bed!.client.status(requestId)) === null ? true : undefined),
      15_000,
      'Redis expiry',
    );
    await eventually(async () => (existsSync(folder) ? undefined : true), 30_000, 'the folder removed');
    // The same pass removes the emptied month folder, a few awaits after the request's folder.
    await eventually(
      async () => (existsSync(path.dirname(folder)) ? undefined : true),
      5_000,
      'the empty month folder',
    );
  });

  it('keeps what may still be in use: unfinished folders until no request can be in flight', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'pyexec-prune-'));
    try {
      const now = Date.now();
      const make = (name: string, ageMs: number, finished: boolean) => {
        const dir = path.join(root, '2026-11', name);
        mkdirSync(dir, { recursive: true });
        if (finished) writeFileSync(path.join(dir, 'response.json'), '{}');
        const t = new Date(now - ageMs);
        if (finished) utimesSync(path.join(dir, 'response.json'), t, t);
        utimesSync(dir, t, t);
        return dir;
      };
      const oldFinished = make('old-finished', 5000, true);
      const newFinished = make('new-finished', 500, true);
      const held = make('held-long', 5000, false);
      const abandoned = make('abandoned', 60_000, false);
      const pruner = new ExecutionFolderPruner({
        root,
        finishedMs: 2000,
        abandonedMs: 30_000,
        intervalMs: 1000,
        logger: silentLogger(),
      });
      assert.deepEqual((await pruner.pruneOnce(now)).sort(), [abandoned, oldFinished].sort());
      assert.ok(existsSync(newFinished) && existsSync(held));
      assert.deepEqual(await pruner.pruneOnce(now), [], 'idempotent');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
