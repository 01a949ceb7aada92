/**
 * How a waiting producer rides through a Redis outage (src/client/pyexec-client.ts `riding`): a
 * lost connection is retried with backoff until the call works or the wait's signal aborts; an
 * answer of Redis (a real error) is thrown at once. The outage itself, end to end, is in
 * test/integration/redis-loss.redis.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isConnectionError, riding } from '../../src/client/pyexec-client.js';

const offline = () => new Error("Stream isn't writeable and enableOfflineQueue options is false");

describe('riding through a Redis outage', () => {
  it('tells a lost connection from an answer of Redis', () => {
    assert.ok(isConnectionError(offline()));
    assert.ok(isConnectionError(new Error('Connection is closed.')));
    assert.ok(isConnectionError(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' })));
    assert.ok(
      isConnectionError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })),
    );
    assert.ok(isConnectionError(new Error('LOADING Redis is loading the dataset in memory')));
    assert.ok(!isConnectionError(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')));
    assert.ok(!isConnectionError(new Error('NOSCRIPT No matching script')));
    assert.ok(!isConnectionError(undefined));
  });

  it('retries while the connection is lost, then returns the answer', async () => {
    let calls = 0;
    const value = await riding(async () => {
      if (++calls < 4) throw offline();
      return 'answer';
    });
    assert.equal(value, 'answer');
    assert.equal(calls, 4);
  });

  it('throws any other error at once', async () => {
    let calls = 0;
    await assert.rejects(
      riding(async () => {
        calls++;
        throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
      }),
      /WRONGTYPE/,
    );
    assert.equal(calls, 1);
  });

  it('gives up with the connection error when the signal aborts (the wait ran out)', async () => {
    const signal = AbortSignal.timeout(300);
    let calls = 0;
    const t0 = Date.now();
    await assert.rejects(
      riding(async () => {
        calls++;
        throw offline();
      }, signal),
      /Stream isn't writeable/,
    );
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 2000, `gave up after ${took} ms`);
    assert.ok(calls >= 2, `tried ${calls} times`);
  });
});
