import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  buildCodePrompt,
  describeShape,
  renderErrorChain,
  renderErrorFeedback,
  trimMiddle,
} from '../../../src/generators/index.js';
import { makeRequest, runtimeError } from '../../support/generator-support.js';

describe('prompt building', () => {
  describe('renderErrorFeedback (Osprey to_prompt_text)', () => {
    it('renders the attempt, stage, failed code, type, message, issues and traceback', () => {
      const text = renderErrorFeedback({
        stage: 'analysis',
        errorType: 'analysis',
        message: 'write blocked',
        failedCode: "caput('X', 1)",
        issues: ['EPICS write in read-only mode', 'unused import'],
        traceback: 'Traceback: line 1',
        attempt: 2,
      });
      assert.equal(
        text,
        [
          '**Attempt 2 - ANALYSIS FAILED**',
          "**Failed Code:**\n```python\ncaput('X', 1)\n```",
          '**Error Type:** analysis',
          '**Error:** write blocked',
          '**Issues Found:**\n- EPICS write in read-only mode\n- unused import',
          '**Traceback:**\n```\nTraceback: line 1\n```',
        ].join('\n\n'),
      );
    });

    it('keeps the first and last 500 characters of a traceback longer than 1000', () => {
      const traceback = `${'A'.repeat(600)}${'B'.repeat(600)}`;
      const text = renderErrorFeedback({ ...runtimeError(1), traceback });
      assert.ok(text.includes(`${'A'.repeat(500)}\n... (truncated) ...\n${'B'.repeat(500)}`));
      assert.ok(!text.includes('A'.repeat(501)));
      assert.equal(trimMiddle('short'), 'short');
    });

    it('renders only the last errors of the chain, and nothing for an empty chain', () => {
      const chain = [runtimeError(1, 'first'), runtimeError(2, 'second'), runtimeError(3, 'third')];
      const text = renderErrorChain(chain, 2);
      assert.ok(!text.includes('**Error:** first'));
      assert.ok(text.includes('**Error:** second') && text.includes('**Error:** third'));
      assert.equal(renderErrorChain([], 2), '');
    });
  });

  describe('describeShape', () => {
    it('describes keys and types, never values', () => {
      assert.equal(
        describeShape({ pvs: ['A:B', 'C:D'], limits: { lo: 1, hi: null }, ok: true, nested: { a: { b: { c: 1 } } } }),
        '{pvs: array[2] of string, limits: {lo: number, hi: null}, ok: boolean, nested: {a: {b: object (1 keys)}}}',
      );
      assert.equal(describeShape([]), 'array (empty)');
    });
  });

  describe('buildCodePrompt', () => {
    it('falls back to general guidance when the request has no capability prompts', () => {
      const prompt = buildCodePrompt(makeRequest({ capability_prompts: [] }).request, [], 'bare');
      assert.match(prompt.user, /GUIDANCE:\n- Write clean, working code\./);
    });

    it('leaves out empty expected results and context', () => {
      const prompt = buildCodePrompt(
        makeRequest({ expected_results: {}, capability_context_data: null }).request,
        [],
        'bare',
      );
      assert.doesNotMatch(prompt.user, /Expected Results|Context Data/);
    });

    it('takes a custom system role and extensions', () => {
      const prompt = buildCodePrompt(makeRequest().request, [], 'fenced', {
        systemRole: 'You write Python for the ALS control room.',
        systemPromptExtensions: 'Use pyepics caget for reads.',
      });
      assert.match(prompt.system, /^You write Python for the ALS control room\./);
      assert.match(prompt.system, /Use pyepics caget for reads\.$/);
      assert.match(prompt.system, /fenced block/);
    });
  });
});
