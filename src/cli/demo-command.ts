import { ApproverClient, createToken } from '../approval/index.js';
import { PyexecClient, type WaitResult } from '../client/pyexec-client.js';
import type { Config } from '../config.js';
import type { CodeGenerator, GeneratedCode, GenerationRequest } from '../generators/code-generator.js';
import type { Logger } from '../logger.js';
import type { PythonExecutionResponse } from '../queues/result.js';
import { redactUrl } from '../redis/connection.js';
import type { GlobalOptions } from './context.js';
import { startLocalStack } from './up-command.js';

/** Canned code for the demo's requests when no real LLM is configured (code_generator: mock). */
const DEMO_CODE: Record<string, string> = {
  read: `from epics import caget

current = caget('BEAM:CURRENT')
magnets = {name: caget(f'MAG:{name}:CURRENT:RB') for name in ('QF1', 'QD1', 'HCM1')}
print(f"beam current {current:.2f} mA")
results = {'beam_current_mA': current, 'magnet_readbacks_A': magnets}`,
  plot: `import time
import numpy as np
import matplotlib.pyplot as plt
from epics import caget

samples = []
for _ in range(5):
    samples.append(caget('BEAM:CURRENT'))
    time.sleep(0.05)
plt.plot(np.arange(len(samples)), samples, marker='o')
plt.xlabel('sample'); plt.ylabel('beam current [mA]'); plt.title('Beam current')
results = {'samples': samples, 'mean_mA': float(np.mean(samples))}`,
  ramp: `import time
from epics import caget, caput

before = caget('MAG:QF1:CURRENT:RB')
caput('MAG:QF1:CURRENT:SP', 0.5, wait=True)
time.sleep(0.5)  # let the readback follow
after = caget('MAG:QF1:CURRENT:RB', use_monitor=False)
results = {'magnet': 'QF1', 'before_A': before, 'after_A': after}`,
};

/** Picks the canned program by the request's folder name. */
class DemoGenerator implements CodeGenerator {
  readonly name = 'demo';
  async generate(request: GenerationRequest): Promise<GeneratedCode> {
    const key = request.request.execution_folder_name.replace(/^demo_/, '');
    return { code: DEMO_CODE[key] ?? DEMO_CODE['read']!, generator: this.name };
  }
}

const REQUESTS = [
  {
    key: 'read',
    user_query: 'What are the beam current and the magnet readbacks?',
    task_objective: 'Read BEAM:CURRENT and the QF1/QD1/HCM1 readbacks',
  },
  { key: 'plot', user_query: 'Plot the beam current', task_objective: 'Sample BEAM:CURRENT five times and plot it' },
  {
    key: 'ramp',
    user_query: 'Ramp QF1 to 0.5 A',
    task_objective: 'Set MAG:QF1:CURRENT:SP to 0.5 A and confirm the readback',
  },
];

function summary(r: PythonExecutionResponse): string {
  const lines = [
    `  status: ${r.status}${r.reason ? ` (${r.reason})` : ''}`,
    `  mode: ${r.execution_mode ?? '-'}, attempts: ${r.generation_attempt}`,
  ];
  if (r.results) lines.push(`  results: ${JSON.stringify(r.results)}`);
  if (r.figure_count) lines.push(`  figures: ${r.figure_paths.join(', ')}`);
  if (r.notebook_path) lines.push(`  notebook: ${r.notebook_path}`);
  return lines.join('\n');
}

/**
 * `pyexec demo`: brings up a private fleet (Redis, soft IOC, every worker), submits three requests
 * — a read, a plot, and a magnet ramp that needs approval — approves the ramp, and prints progress
 * and results.
 */
export async function demoCommand(
  opts: GlobalOptions,
  config: Config,
  logger: Logger,
  out = process.stdout,
): Promise<number> {
  config.approval.global_mode = 'selective';
  config.approval.capabilities.python_execution = { enabled: true, mode: 'epics_writes' };
  config.control_system.writes_enabled = true;
  // The demo approves through the approver API, as a person would, with a token of its own.
  const { token, entry } = createToken('demo-approver', 'approver');
  config.pyexec.approver.tokens = [...config.pyexec.approver.tokens, entry];
  const useCanned = config.execution.code_generator === 'mock';
  const stack = await startLocalStack(
    { ...opts, metricsPort: 0, approverPort: 0, ...(useCanned ? { generator: new DemoGenerator() } : {}) },
    config,
    logger,
  );
  const client = await PyexecClient.connect({ redisUrl: stack.redisUrl, config });
  const approver = new ApproverClient({ url: stack.approver!.url, token, client: 'pyexec demo' });
  const say = (s: string) => out.write(`${s}\n`);
  try {
    say(
      `pyexec demo: redis ${redactUrl(stack.redisUrl)}, soft IOC on CA port ${stack.ioc?.port ?? '-'}, ` +
        `approver ${stack.approver!.url}/, generator ${useCanned ? 'demo (canned code)' : config.execution.code_generator}`,
    );
    const submitted = await Promise.all(
      REQUESTS.map(async (r) => {
        const { requestId } = await client.submit({
          user_query: r.user_query,
          task_objective: r.task_objective,
          execution_folder_name: `demo_${r.key}`,
        });
        say(`submitted ${r.key}: ${requestId}`);
        return { ...r, requestId };
      }),
    );
    let failures = 0;
    await Promise.all(
      submitted.map(async (r) => {
        const onEvent = (e: { type: string; status?: string }) => e.status && say(`  [${r.key}] ${e.status}`);
        let res: WaitResult = await client.wait(r.requestId, { timeoutMs: 120_000, returnOnApproval: true, onEvent });
        if (res.kind === 'approval_required') {
          const held = await approver.show(res.holdJobId);
          say(`  [${r.key}] approval required (${res.reason}; mode ${res.mode}, risk ${res.risk}). Code:`);
          say(
            held.lines
              .map((l) => `    ${l.severity ? '!' : ' '} ${String(l.number).padStart(3)}  ${l.text}`)
              .join('\n'),
          );
          await approver.approve(res.holdJobId, { codeSha256: held.codeSha256, analysisSha256: held.analysisSha256 });
          say(`  [${r.key}] approved by demo-approver through the approver API`);
          res = await client.wait(r.requestId, { timeoutMs: 120_000, onEvent });
        }
        if (res.kind !== 'finished') {
          failures++;
          say(`${r.key}: did not finish (${res.kind})`);
          return;
        }
        if (res.response.status !== 'succeeded') failures++;
        say(`${r.key}:\n${summary(res.response)}`);
      }),
    );
    if (stack.ioc) say(`IOC now reads MAG:QF1:CURRENT:RB = ${await stack.ioc.caget('MAG:QF1:CURRENT:RB')}`);
    const audit = await approver.audit(10);
    say(`audit: ${audit.map((a) => `${a.decision} by ${a.approver} (code ${a.codeSha256.slice(0, 12)})`).join('; ')}`);
    say(
      failures === 0
        ? 'demo finished: all requests succeeded'
        : `demo finished: ${failures} request(s) did not succeed`,
    );
    return failures === 0 ? 0 : 1;
  } finally {
    await client.close();
    await stack.close();
  }
}
