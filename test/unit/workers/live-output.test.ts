/**
 * LiveOutput (src/workers/live-output.ts) with a recording store: what it gathers into one event,
 * the order it keeps, where it cuts text, and how it stops at the budget. No Redis: the store's
 * atomic budget is tested in test/integration/live-output.redis.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../../../src/logger.js';
import type { OutputEventInput, RequestStore } from '../../../src/store/request-store.js';
import { LiveOutput, type OutputProgress } from '../../../src/workers/live-output.js';

function recorder() {
  const calls: OutputEventInput[][] = [];
  const summaries: number[] = [];
  const store = {
    async appendOutput(_id: string, events: readonly OutputEventInput[]) {
      calls.push([...events]);
      return { sent: events.length, dropped: 0, ended: false };
    },
    async outputSummary(_id: string, dropped: number) {
      summaries.push(dropped);
    },
  } as unknown as RequestStore;
  return { store, calls, summaries };
}

const live = (store: RequestStore, extra: Partial<ConstructorParameters<typeof LiveOutput>[0]> = {}) =>
  new LiveOutput({
    store,
    requestId: 'r',
    flushMs: 50,
    maxBytes: 1000,
    maxEvents: 100,
    logger: silentLogger(),
    ...extra,
  });

describe('live output', () => {
  it('gathers adjacent text of one stream into one event, keeping the order across streams and displays', async () => {
    const { store, calls } = recorder();
    const out = live(store);
    out.push({ kind: 'stdout', text: 'a' });
    out.push({ kind: 'stdout', text: 'b' });
    out.push({ kind: 'stderr', text: 'warn' });
    out.push({ kind: 'stdout', text: 'c' });
    out.push({ kind: 'display', data: { 'image/png': 'AAAA' }, metadata: {} });
    out.push({ kind: 'stdout', text: 'd' });
    await out.close();
    const events = calls.flat();
    assert.deepEqual(
      events.map((e) => [e.type, e.data]),
      [
        ['stdout', '{"text":"ab"}'],
        ['stderr', '{"text":"warn"}'],
        ['stdout', '{"text":"c"}'],
        ['display', '{"data":{"image/png":"AAAA"},"metadata":{}}'],
        ['stdout', '{"text":"d"}'],
      ],
    );
  });

  it('waits flush_ms before sending text, and sends it without a close', async () => {
    const { store, calls } = recorder();
    const out = live(store, { flushMs: 100 });
    out.push({ kind: 'stdout', text: 'x' });
    assert.equal(calls.length, 0, 'nothing is sent at once');
    await sleep(250);
    assert.deepEqual(
      calls.flat().map((e) => e.data),
      ['{"text":"x"}'],
    );
    await out.close();
  });

  it('cuts long text into events of at most 64 KiB, never inside a character', async () => {
    const { store, calls } = recorder();
    const out = live(store, { maxBytes: 1_000_000 });
    const text = 'é'.repeat(50_000); // 100,000 bytes
    out.push({ kind: 'stdout', text });
    await out.close();
    const events = calls.flat();
    assert.ok(events.length >= 2);
    assert.ok(events.every((e) => e.bytes <= 64 * 1024));
    assert.equal(events.map((e) => (JSON.parse(e.data) as { text: string }).text).join(''), text);
  });

  it('stops at the budget: one marker, then only a count, and the count at the end', async () => {
    const { store, calls, summaries } = recorder();
    const progress: OutputProgress[] = [];
    const out = live(store, { maxBytes: 100, onProgress: (p) => progress.push(p) });
    for (let i = 0; i < 10_000; i++) out.push({ kind: 'stdout', text: '0123456789' });
    await out.close();
    const events = calls.flat();
    const sent = events.filter((e) => e.type === 'stdout').reduce((n, e) => n + e.bytes, 0);
    assert.equal(sent, 100);
    assert.equal(events.filter((e) => e.type === 'over').length, 1);
    assert.deepEqual(summaries, [100_000 - 100]);
    assert.equal(progress.at(-1)?.stdout_bytes, 100_000);
    assert.equal(progress.at(-1)?.dropped_bytes, 100_000 - 100);
  });

  it('never throws into the run when the store fails, and ignores output after close', async () => {
    const store = {
      appendOutput: async () => {
        throw new Error('Redis is gone');
      },
      outputSummary: async () => {},
    } as unknown as RequestStore;
    const out = live(store);
    out.push({ kind: 'stdout', text: 'a' });
    await out.close();
    out.push({ kind: 'stdout', text: 'late' });
    await out.close();
  });
});
