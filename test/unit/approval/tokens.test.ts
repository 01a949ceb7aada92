import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createToken, hashToken, TokenAuthenticator } from '../../../src/approval/tokens.js';

const alice = createToken('alice', 'approver');
const victor = createToken('victor', 'viewer');
const auth = new TokenAuthenticator([alice.entry, victor.entry]);

describe('approver tokens', () => {
  it('stores only the sha256 of a token', () => {
    assert.equal(alice.entry.token_sha256, hashToken(alice.token));
    assert.match(alice.entry.token_sha256, /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(alice.entry).includes(alice.token));
    assert.equal(hashToken('secret'), '2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b');
  });

  it('gives each fresh token 256 random bits', () => {
    assert.notEqual(createToken('a', 'viewer').token, createToken('a', 'viewer').token);
    assert.ok(alice.token.length >= 40);
  });

  describe('authenticate', () => {
    it('knows a bearer token and its role', () => {
      assert.deepEqual(auth.authenticate(`Bearer ${alice.token}`), { name: 'alice', role: 'approver' });
      assert.deepEqual(auth.authenticate(`bearer  ${victor.token}`), { name: 'victor', role: 'viewer' });
    });

    it('refuses a missing, malformed or unknown token', () => {
      for (const header of [
        undefined,
        '',
        'Bearer',
        'Bearer ',
        `Basic ${alice.token}`,
        alice.token,
        'Bearer nope',
        `Bearer ${alice.token}x`,
        `Bearer ${alice.entry.token_sha256}`,
      ]) {
        assert.equal(auth.authenticate(header), null, String(header));
      }
    });

    it('refuses everything when no token is configured (fail closed)', () => {
      const none = new TokenAuthenticator([]);
      assert.equal(none.size, 0);
      assert.equal(none.authenticate(`Bearer ${alice.token}`), null);
    });
  });
});
