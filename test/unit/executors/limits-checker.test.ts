/**
 * The run-time channel limits check (python/pyexec_runtime/limits.py), table-driven: Osprey's
 * limits-validator checklist, run in the project's Python without Channel Access (the current
 * value for max_step comes from a stub).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { pythonExecutable, scrubbedEnv } from '../../../src/python-env.js';

const DB = {
  _comment: 'skipped',
  defaults: { writable: true },
  'SP:A': { min_value: 0, max_value: 10 },
  'SP:STEP': { max_step: 2 },
  'SP:RO': { writable: false },
  'SP:BAD': 'not an object',
  'SP:BADNUM': { min_value: 'zero' },
};

// [channel, value, allow_unlisted, current (for max_step; null: the read fails), refused?]
const CASES: [string, unknown, boolean, number | null, boolean][] = [
  ['SP:A', 5, true, 0, false],
  ['SP:A', 0, true, 0, false],
  ['SP:A', 10, true, 0, false],
  ['SP:A', -0.1, true, 0, true],
  ['SP:A', 10.5, true, 0, true],
  ['SP:A', 'text', true, 0, false],
  ['SP:A', [11], true, 0, true],
  ['SP:RO', 1, true, 0, true],
  ['SP:UNLISTED', 1, true, 0, false],
  ['SP:UNLISTED', 1, false, 0, true],
  ['SP:STEP', 6, true, 5, false],
  ['SP:STEP', 8, true, 5, true],
  ['SP:STEP', 6, true, null, true],
  ['SP:BAD', 1e9, true, 0, false],
  ['SP:BADNUM', 1e9, true, 0, false],
];

const SCRIPT = `
import json, sys
from pyexec_runtime.limits import Checker, normalise
from pyexec_runtime.errors import ChannelLimitsViolation, PyexecRefusal
db, cases = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = []
for channel, value, allow, current, _ in cases:
    def read(_c, current=current):
        if current is None:
            raise TimeoutError("no value")
        return current
    try:
        Checker(normalise(db), allow, read).check(channel, value)
        out.append(None)
    except ChannelLimitsViolation as exc:
        assert isinstance(exc, PyexecRefusal)
        out.append(str(exc))
print(json.dumps({"results": out, "channels": sorted(normalise(db))}))
`;

describe('channel limits check', () => {
  const run = () =>
    JSON.parse(
      execFileSync(pythonExecutable(), ['-c', SCRIPT, JSON.stringify(DB), JSON.stringify(CASES)], {
        env: scrubbedEnv({}),
        encoding: 'utf8',
      }),
    ) as { results: (string | null)[]; channels: string[] };

  it('refuses exactly the writes that break min, max, max_step, writable or the unlisted rule', () => {
    const { results } = run();
    CASES.forEach(([channel, value, allow, current, refused], i) => {
      assert.equal(
        results[i] !== null,
        refused,
        `${channel} <- ${JSON.stringify(value)} (unlisted allowed: ${allow}, current: ${current}): ${results[i]}`,
      );
    });
    assert.match(results[3]!, /below min_value 0/);
    assert.match(results[4]!, /above max_value 10/);
    assert.match(results[11]!, /exceeds max_step 2/);
    assert.match(results[12]!, /cannot read the current value/);
  });

  it('skips comments and malformed entries when loading the database', () => {
    assert.deepEqual(run().channels, ['SP:A', 'SP:RO', 'SP:STEP']);
  });
});
