import type { CodeGenerator, GeneratedCode, GenerationRequest } from '../../src/generators/code-generator.js';

/**
 * A generator for tests that drive a fleet from outside (the Python client, the CLI): the program
 * is chosen by the request's `execution_folder_name`, so one fleet answers many kinds of request.
 */
export const PROGRAMS: Record<string, string> = {
  ok: "results = {'value': 42}",
  /** Prints in a loop, makes a figure half-way (displayed as a PNG, and left open for the saved figures). */
  prints: `import io
import time
import matplotlib.pyplot as plt
from IPython.display import Image, display
for i in range(10):
    print(f"line {i}", flush=True)
    time.sleep(0.05)
fig, ax = plt.subplots()
ax.plot([1, 2, 3], [1, 4, 9])
png = io.BytesIO()
fig.savefig(png, format='png')
display(Image(png.getvalue()))
for i in range(10, 20):
    print(f"line {i}", flush=True)
    time.sleep(0.05)
results = {'lines': 20}
`,
  /** Writes a PV: held for approval under epics_writes. */
  write: `from epics import caget, caput
old = caget('DEVICE:PV:SETPOINT')
caput('DEVICE:PV:SETPOINT', old + 1, wait=True)
results = {'old_value': old, 'new_value': old + 1}
`,
  /** Runs for a minute unless cancelled. */
  slow: `import time
for i in range(600):
    print(i, flush=True)
    time.sleep(0.1)
results = {}
`,
  /** Prints millions of lines. */
  flood: `import sys
for i in range(2_000_000):
    print(i)
results = {'done': True}
`,
};

export class ScriptedGenerator implements CodeGenerator {
  readonly name = 'scripted';
  async generate(request: GenerationRequest): Promise<GeneratedCode> {
    const code = PROGRAMS[request.request.execution_folder_name.split('-')[0]!] ?? PROGRAMS['ok']!;
    return { code, generator: this.name };
  }
}
