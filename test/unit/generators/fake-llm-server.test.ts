import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { type FakeLlmServer, startFakeLlmServer } from '../../support/fake-llm-server.js';

// The test server other suites rely on: its own contract, over plain fetch.

let llm: FakeLlmServer;
before(async () => {
  llm = await startFakeLlmServer();
});
after(() => llm.close());
afterEach(() => llm.reset());

async function post(
  path: string,
  body: unknown,
): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const res = await fetch(`${llm.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

const chat = {
  model: 'm',
  messages: [
    { role: 'system', content: 'sys' },
    { role: 'user', content: 'hi' },
  ],
};
const messages = {
  model: 'c',
  max_tokens: 10,
  system: 'sys',
  messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
};

describe('fake LLM server', () => {
  it('answers both APIs in script order and records what was asked', async () => {
    llm.script('one', { text: 'two', usage: { inputTokens: 7, outputTokens: 3 } });
    const a = await post('/v1/chat/completions', chat);
    const b = await post('/v1/messages', messages);
    assert.equal((a.json['choices'] as { message: { content: string } }[])[0]?.message.content, 'one');
    assert.deepEqual(b.json['content'], [{ type: 'text', text: 'two' }]);
    assert.deepEqual(b.json['usage'], { input_tokens: 7, output_tokens: 3 });
    assert.deepEqual(
      llm.requests.map((r) => [r.api, r.system, r.lastUserMessage, r.status]),
      [
        ['openai', 'sys', 'hi', 200],
        ['anthropic', 'sys', 'hi', 200],
      ],
    );
  });

  it('gives a reply marked for one API only to that API', async () => {
    llm.script({ api: 'anthropic', text: 'for claude' }, 'for anyone');
    const a = await post('/v1/chat/completions', chat);
    assert.equal((a.json['choices'] as { message: { content: string } }[])[0]?.message.content, 'for anyone');
    assert.equal(llm.pending(), 1);
  });

  it('answers errors with the API error body and a short retry-after for retryable ones', async () => {
    llm.script({ status: 429 }, { status: 401, errorMessage: 'bad key' });
    const limited = await post('/v1/messages', messages);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after-ms'), '10');
    assert.deepEqual(limited.json, { type: 'error', error: { type: 'rate_limit_error', message: 'fake error 429' } });
    const denied = await post('/v1/chat/completions', chat);
    assert.equal(denied.status, 401);
    assert.equal((denied.json['error'] as { message: string }).message, 'bad key');
  });

  it('answers a 500 that must not be retried once the script is empty, unless a default reply is set', async () => {
    const empty = await post('/v1/chat/completions', chat);
    assert.equal(empty.status, 500);
    assert.equal(empty.headers.get('x-should-retry'), 'false');
    llm.setDefaultReply((req) => `echo ${req.lastUserMessage}`);
    const echoed = await post('/v1/chat/completions', chat);
    assert.equal((echoed.json['choices'] as { message: { content: string } }[])[0]?.message.content, 'echo hi');
  });
});
