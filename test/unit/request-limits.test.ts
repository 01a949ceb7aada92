/**
 * What a producer may send, checked before anything is written to Redis: hostile or careless
 * values (cycles, BigInt, nesting 10,000 deep, 20 MB, 200,000 keys, class instances) get a typed
 * InvalidRequestError naming the problem, never a raw TypeError or RangeError; the limits come
 * from `pyexec.request_limits`; the digest that idempotency keys on is the request's content.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config.js';
import { InvalidRequestError, RequestTooLargeError } from '../../src/errors.js';
import { prepareRequest } from '../../src/request.js';

const limits = parseConfig({}).pyexec.request_limits;
const base = { user_query: 'q', task_objective: 't', execution_folder_name: 'f' };
const withContext = (data: unknown) => ({ ...base, capability_context_data: data });

function nested(depth: number): Record<string, unknown> {
  let v: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < depth; i++) v = { d: v };
  return v;
}

/** Asserts `fn` throws an InvalidRequestError (of `cls`) whose message matches `message`. */
function refuses(fn: () => unknown, cls: typeof InvalidRequestError, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${(err as Error)?.constructor?.name}: ${err}`);
    assert.match((err as Error).message, message);
    return true;
  });
}

describe('prepareRequest', () => {
  it('has sane default limits: 1 MiB, depth 64, 100,000 keys', () => {
    assert.deepEqual(limits, { max_bytes: 1_048_576, max_depth: 64, max_keys: 100_000 });
  });

  it('serialises a valid request once and digests its content', () => {
    const p = prepareRequest(withContext({ beam: [1, 2, 3], note: 'ok' }), limits);
    assert.equal(p.json, JSON.stringify(p.request));
    assert.match(p.digest, /^[0-9a-f]{64}$/);
    assert.deepEqual(p.request.capability_context_data, { beam: [1, 2, 3], note: 'ok' });
  });

  it('gives the same digest for the same content in any key order, whatever the thread id', () => {
    const a = prepareRequest({ ...withContext({ x: 1, y: { b: 2, a: 1 } }), thread_id: 'one' }, limits);
    const b = prepareRequest(
      { thread_id: 'two', capability_context_data: { y: { a: 1, b: 2 }, x: 1 }, ...base },
      limits,
    );
    assert.equal(a.digest, b.digest);
    const c = prepareRequest({ ...base, task_objective: 'another task' }, limits);
    assert.notEqual(a.digest, c.digest);
  });

  it('refuses a cyclic object, naming where', () => {
    const data: Record<string, unknown> = { a: { b: {} } };
    (data['a'] as { b: Record<string, unknown> }).b['back'] = data;
    refuses(
      () => prepareRequest(withContext(data), limits),
      InvalidRequestError,
      /capability_context_data\.a\.b\.back.*cycle/,
    );
  });

  it('accepts the same object twice when it is not a cycle', () => {
    const shared = { v: 1 };
    const p = prepareRequest(withContext({ a: shared, b: shared }), limits);
    assert.deepEqual(p.request.capability_context_data, { a: { v: 1 }, b: { v: 1 } });
  });

  it('refuses BigInt, functions, symbols, NaN and class instances', () => {
    refuses(() => prepareRequest(withContext({ n: 10n }), limits), InvalidRequestError, /\.n: a bigint/);
    refuses(() => prepareRequest(withContext({ f: () => 1 }), limits), InvalidRequestError, /\.f: a function/);
    refuses(() => prepareRequest(withContext({ s: Symbol('x') }), limits), InvalidRequestError, /\.s: a symbol/);
    refuses(() => prepareRequest(withContext({ x: Number.NaN }), limits), InvalidRequestError, /\.x: NaN/);
    refuses(() => prepareRequest(withContext({ t: new Date() }), limits), InvalidRequestError, /\.t: a Date/);
    refuses(() => prepareRequest(withContext({ m: new Map() }), limits), InvalidRequestError, /\.m: a Map/);
    refuses(() => prepareRequest(withContext({ a: [1, undefined] }), limits), InvalidRequestError, /a\[1\]: undefined/);
  });

  it('refuses nesting 10,000 deep without overflowing the stack', () => {
    refuses(() => prepareRequest(withContext(nested(10_000)), limits), RequestTooLargeError, /deeper than 64/);
  });

  it('takes nesting up to the configured depth, and refuses one more', () => {
    const deep = { ...limits, max_depth: 10 };
    // The request object is level 1 and capability_context_data level 2; nested(n) is n+1 levels more.
    assert.ok(prepareRequest(withContext(nested(7)), deep));
    assert.ok(prepareRequest(withContext(nested(8)), deep));
    refuses(() => prepareRequest(withContext(nested(9)), deep), RequestTooLargeError, /max_depth/);
  });

  it('refuses 20 MB of data', () => {
    const big = 'x'.repeat(20 * 1024 * 1024);
    refuses(
      () => prepareRequest(withContext({ blob: big }), limits),
      RequestTooLargeError,
      /larger than 1048576 bytes/,
    );
  });

  it('counts bytes as UTF-8', () => {
    const small = { ...limits, max_bytes: 2000 };
    // 600 three-byte characters: 600 UTF-16 units, 1,800 bytes, plus the rest of the request.
    refuses(() => prepareRequest(withContext({ s: '€'.repeat(700) }), small), RequestTooLargeError, /max_bytes/);
    assert.ok(prepareRequest(withContext({ s: 'e'.repeat(700) }), small));
  });

  it('refuses 200,000 keys, and a sparse array of length 1e9 without allocating it', () => {
    const many = Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [`k${i}`, i]));
    refuses(() => prepareRequest(withContext(many), limits), RequestTooLargeError, /more than 100000 keys/);
    const sparse: unknown[] = [];
    sparse.length = 1e9;
    refuses(() => prepareRequest(withContext({ sparse }), limits), RequestTooLargeError, /max_keys/);
  });

  it('turns a throwing getter into an InvalidRequestError', () => {
    const hostile = {};
    Object.defineProperty(hostile, 'boom', {
      enumerable: true,
      get() {
        throw new RangeError('no');
      },
    });
    refuses(() => prepareRequest(withContext(hostile), limits), InvalidRequestError, /cannot be read: no/);
  });

  it('still reports schema errors by field', () => {
    refuses(() => prepareRequest({ user_query: 'q' }, limits), InvalidRequestError, /task_objective/);
    refuses(() => prepareRequest(null, limits), InvalidRequestError, /invalid request/);
  });

  it('refuses a max_depth the kernel could not decode, at config time', () => {
    assert.throws(() => parseConfig({ pyexec: { request_limits: { max_depth: 1000 } } }), /max_depth/);
  });
});
