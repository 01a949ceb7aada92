import type { CodeGenerator, ErrorFeedback, GeneratedCode, GenerationRequest } from './code-generator.js';

/**
 * The mock generator: a shipped plug-in (`execution.code_generator: mock`) and the test fake.
 * Behaviours follow Osprey's MockCodeGenerator; the EPICS ones use pyepics `caget`/`caput`.
 */
export const MOCK_BEHAVIORS = {
  success: `# Mock generated code - success path
import json
from datetime import datetime

result_value = 42
timestamp = datetime.now().isoformat()

results = {
    'value': result_value,
    'timestamp': timestamp,
    'status': 'success'
}`,
  syntax_error: `# Mock generated code - syntax error
def broken_function(
    # Missing closing parenthesis causes syntax error
results = {'value': 42}`,
  runtime_error: `# Mock generated code - runtime error
import json

# ZeroDivisionError
value = 100 / 0
results = {'value': value}`,
  missing_results: `# Mock generated code - missing results
import json

value = 42 * 2
# Forgot to create results dictionary
print(f"Value is {value}")`,
  epics_write: `# Mock generated code - EPICS write operation
from epics import caget, caput

current_value = caget('DEVICE:PV:SETPOINT')

# Write new value (requires approval!)
new_value = current_value * 1.1
caput('DEVICE:PV:SETPOINT', new_value, wait=True)

results = {
    'old_value': current_value,
    'new_value': new_value,
    'pv': 'DEVICE:PV:SETPOINT'
}`,
  epics_read: `# Mock generated code - EPICS read operation
from epics import caget

pv_value = caget('DEVICE:PV:READBACK')
pv_status = caget('DEVICE:STATUS')

results = {
    'value': pv_value,
    'status': pv_status,
    'operation': 'read_only'
}`,
  security_risk: `# Mock generated code - security risk
import subprocess
import os

# Subprocess call (security risk!)
output = subprocess.run(['ls', '-la'], capture_output=True)

# File system access
files = os.listdir('/')

results = {
    'output': output.stdout.decode(),
    'files': files
}`,
} as const;

export type MockBehavior = keyof typeof MOCK_BEHAVIORS | 'error_aware';
export const MOCK_BEHAVIOR_NAMES = [...Object.keys(MOCK_BEHAVIORS), 'error_aware'] as MockBehavior[];

/** Osprey's error_aware behaviour: the code depends on what the earlier errors said. */
function errorAwareCode(errors: readonly ErrorFeedback[]): string {
  if (errors.length === 0) {
    return `values = [1, 2, 3]
results = {'values': values}
results['mean'] = mean(values)`;
  }
  const text = errors
    .map((e) => `${e.errorType} ${e.message}`)
    .join(' ')
    .toLowerCase();
  if (text.includes('nameerror') || text.includes('import')) {
    return `from statistics import mean

values = [1, 2, 3]
results = {'values': values, 'mean': mean(values), 'count': len(values)}`;
  }
  if (text.includes('zerodivisionerror')) {
    return `values = []
count = len(values)
results = {'values': values, 'mean': (sum(values) / count) if count else 0.0}`;
  }
  if (text.includes('syntax')) {
    return `def calculate_mean(values):
    return sum(values) / len(values)

results = {'values': [1, 2, 3], 'mean': calculate_mean([1, 2, 3])}`;
  }
  return `results = {'status': 'success', 'value': 42, 'message': 'Fixed after error'}`;
}

export interface MockGeneratorOptions {
  /** A behaviour name (see MOCK_BEHAVIOR_NAMES). */
  behavior?: string;
  /** Fixed code, returned on every call. */
  code?: string;
  /** Code per call; the last entry repeats. */
  sequence?: readonly string[];
  /** Optional delay before answering, to model a slow model. */
  delayMs?: number;
}

export class MockGenerator implements CodeGenerator {
  readonly name = 'mock';
  callCount = 0;
  lastRequest: GenerationRequest | undefined;
  private readonly options: MockGeneratorOptions;

  constructor(options: MockGeneratorOptions = {}) {
    if (options.behavior !== undefined && !MOCK_BEHAVIOR_NAMES.includes(options.behavior as MockBehavior)) {
      throw new Error(`Unknown behavior: ${options.behavior}. Available: ${MOCK_BEHAVIOR_NAMES.join(', ')}`);
    }
    if (options.behavior === undefined && options.code === undefined && options.sequence === undefined) {
      throw new Error('MockGenerator not configured: give behavior, code or sequence');
    }
    if (options.sequence !== undefined && options.sequence.length === 0)
      throw new Error('MockGenerator: empty sequence');
    this.options = options;
  }

  /** Builds a mock from `execution.generators.mock` (Osprey's `behavior`, plus `code` / `sequence`). */
  static fromConfig(settings: Record<string, unknown> | null | undefined): MockGenerator {
    const s = settings ?? {};
    const opts: MockGeneratorOptions = {};
    if (typeof s['behavior'] === 'string') opts.behavior = s['behavior'];
    if (typeof s['code'] === 'string') opts.code = s['code'];
    if (Array.isArray(s['sequence'])) opts.sequence = s['sequence'].map(String);
    if (typeof s['delay_ms'] === 'number') opts.delayMs = s['delay_ms'];
    if (opts.behavior === undefined && opts.code === undefined && opts.sequence === undefined)
      opts.behavior = 'success';
    return new MockGenerator(opts);
  }

  async generate(request: GenerationRequest, signal: AbortSignal): Promise<GeneratedCode> {
    this.callCount += 1;
    this.lastRequest = request;
    if (this.options.delayMs) {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, this.options.delayMs);
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            reject(signal.reason);
          },
          { once: true },
        );
      });
    }
    return { code: this.pick(request), generator: this.name, usage: { inputTokens: 0, outputTokens: 0 } };
  }

  private pick(request: GenerationRequest): string {
    const { code, sequence, behavior } = this.options;
    if (code !== undefined) return code;
    // The attempt number (not in-memory call count) picks from a sequence, so it holds across
    // worker processes and restarts: retry state lives in the job, not in the generator.
    if (sequence !== undefined) return sequence[Math.min(request.attempt, sequence.length) - 1]!;
    if (behavior === 'error_aware') return errorAwareCode(request.errorChain);
    return MOCK_BEHAVIORS[behavior as keyof typeof MOCK_BEHAVIORS];
  }
}
