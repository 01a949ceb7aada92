import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { extractCode } from '../../../src/generators/index.js';

describe('extractCode', () => {
  const gives: [string, string, string][] = [
    ['a fenced python reply', '```python\nimport os\nresults = {}\n```', 'import os\nresults = {}'],
    ['a fenced py reply with CRLF line ends', '```py\r\nresults = {"a": 1}\r\n```', 'results = {"a": 1}'],
    ['an untagged fence holding Python', '```\nresults = {"a": 1}\n```', 'results = {"a": 1}'],
    ['a bare reply', 'import math\n\nresults = {"pi": math.pi}\n', 'import math\n\nresults = {"pi": math.pi}'],
    ['a reply in single backticks', '`results = {"a": 1}`', 'results = {"a": 1}'],
    [
      'prose around a fenced block',
      'Here is the code:\n\n```python\nx = 1\nresults = {"x": x}\n```\n\nThis stores x.',
      'x = 1\nresults = {"x": x}',
    ],
    [
      'the last python block of several (the revision)',
      'v1:\n```python\nresults = 1\n```\nv2:\n```python\nresults = 2\n```',
      'results = 2',
    ],
    [
      'the python block, not the shell one',
      '```bash\npip install numpy\n```\n```python\nimport numpy\nresults = {}\n```',
      'import numpy\nresults = {}',
    ],
    [
      'an unterminated fence (a reply cut at max_tokens)',
      'Sure:\n```python\nimport numpy as np\nresults = {"n": 1}',
      'import numpy as np\nresults = {"n": 1}',
    ],
    [
      'a reply after a reasoning block',
      '<think>maybe import x first</think>\n```python\nresults = {}\n```',
      'results = {}',
    ],
    [
      'indented code, keeping its indentation',
      '```python\nfor v in [1]:\n    print(v)\nresults = {}\n```',
      'for v in [1]:\n    print(v)\nresults = {}',
    ],
  ];
  for (const [what, reply, code] of gives) {
    it(`gives the code of ${what}`, () => assert.equal(extractCode(reply), code));
  }

  const none: [string, string][] = [
    ['an empty reply', ''],
    ['a blank reply', '  \n\t\n'],
    ['a refusal', "I'm sorry, but I can't help with that request."],
    ['an empty fence', '```python\n```'],
    ['only a shell block', '```bash\npip install numpy\n```'],
    ['only a reasoning block', '<think>import os</think>'],
  ];
  for (const [what, reply] of none) {
    it(`gives nothing for ${what}`, () => assert.equal(extractCode(reply), undefined));
  }

  it('ignores bare text when bare code is not allowed (a review that approves)', () => {
    assert.equal(extractCode('APPROVED', { allowBare: false }), undefined);
    assert.equal(extractCode('results = {}', { allowBare: false }), undefined);
  });
});
