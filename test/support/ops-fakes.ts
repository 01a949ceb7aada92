/**
 * Fakes behind the plug-in interfaces for the operations tests (metrics, shutdown, scale): a
 * scripted generator, a pattern analyzer with a simple policy, and an executor that records every
 * run in Redis and can be told (by the code it runs) to take a while. They make runs cheap and
 * their effects countable; the queues, workers and processes around them are real.
 *
 * What a request does is steered by its task_objective, which the generator reads:
 *   `ok`            results = {...}
 *   `code-error`    attempt 1 raises (execution sends it back to generation), attempt 2 is ok
 *   `flaky-llm`     the first generation call fails as an infrastructure error (BullMQ retry)
 *   `write`         code with a caput (write_access, needs approval where the config asks)
 *   `sleep:<ms>`    the execution takes <ms> (any of the above may add it, e.g. `write sleep:60000`)
 *   `sleep-once:<ms>`  the first run of the request's code takes <ms>, a run after it none (a run
 *                   cut short by a killed worker, then run again)
 */

import type { AnalysisReport, Analyzer } from '../../src/analysis/analyzer.js';
import type { DecidePolicy, PolicyDecision } from '../../src/analysis/policy.js';
import { approvalRequired } from '../../src/analysis/policy.js';
import type { Config } from '../../src/config.js';
import { GeneratorUnavailableError } from '../../src/errors.js';
import type { ExecutionOutcome, ExecutionTask, Executor } from '../../src/executors/executor.js';
import type { CodeGenerator, GeneratedCode, GenerationRequest } from '../../src/generators/code-generator.js';
import type { RedisConnection as Redis } from '../../src/redis/connection.js';

export const TOKENS = { input: 100, output: 20 } as const;

export class ScriptedGenerator implements CodeGenerator {
  readonly name = 'scripted';
  private readonly calls = new Map<string, number>();

  async generate(req: GenerationRequest): Promise<GeneratedCode> {
    const task = req.request.task_objective;
    const n = (this.calls.get(req.requestId) ?? 0) + 1;
    this.calls.set(req.requestId, n);
    if (task.includes('flaky-llm') && n === 1) throw new GeneratorUnavailableError('rate limited (scripted)');
    const sleep = /(?<!-)\bsleep:(\d+)/.exec(task)?.[1];
    const once = /sleep-once:(\d+)/.exec(task)?.[1];
    const lines = [
      `# task: ${task}`,
      ...(sleep ? [`# sleep ${sleep}`] : []),
      ...(once ? [`# sleep-once ${once}`] : []),
    ];
    if (task.includes('code-error') && req.attempt === 1) lines.push("raise ValueError('scripted failure')");
    if (task.includes('write')) lines.push("caput('TEST:SETPOINT', 1.0)");
    lines.push(`results = {'attempt': ${req.attempt}}`);
    return {
      code: lines.join('\n'),
      generator: this.name,
      usage: { inputTokens: TOKENS.input, outputTokens: TOKENS.output },
    };
  }
}

/** Finds `caput(` as an EPICS write; everything else is read-only. */
export class PatternAnalyzer implements Analyzer {
  readonly name = 'pattern';
  async analyze(code: string): Promise<AnalysisReport> {
    const lines = code.split('\n');
    const writes = lines.flatMap((l, i) => (l.includes('caput(') ? [i + 1] : []));
    return {
      syntaxOk: true,
      hasWrites: writes.length > 0,
      hasReads: false,
      risk: writes.length > 0 ? 'high' : 'low',
      findings: writes.map((line) => ({
        rule: 'epics-write',
        severity: 'high' as const,
        line,
        column: 0,
        message: 'caput writes to EPICS',
      })),
      controlSystemType: 'epics',
      assignsResults: code.includes('results ='),
    };
  }
}

export const simplePolicy: DecidePolicy = (report: AnalysisReport, config: Config): PolicyDecision => {
  const { required, reason } = approvalRequired(config, report.hasWrites);
  return { mode: report.hasWrites ? 'write_access' : 'read_only', approvalRequired: required, approvalReason: reason };
};

/** The Redis hash where RecordingExecutor counts runs: field = request id, value = runs. */
export const executionsKey = (prefix: string) => `{${prefix}}:test:executions`;

/**
 * Counts each run in Redis (HINCRBY, so runs in every process add up), then returns ok, or a code
 * error for code that raises. `# sleep <ms>` in the code makes the run take that long; an abort
 * ends it at once with `signal.reason`, as real executors do.
 */
export class RecordingExecutor implements Executor {
  readonly method = 'local' as const;
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async execute(task: ExecutionTask, signal: AbortSignal): Promise<ExecutionOutcome> {
    const t0 = Date.now();
    const run = await this.redis.hincrby(executionsKey(this.prefix), task.requestId, 1);
    const once = run === 1 ? Number(/# sleep-once (\d+)/.exec(task.code)?.[1] ?? 0) : 0;
    const sleep = Number(/# sleep (\d+)/.exec(task.code)?.[1] ?? 0) + once;
    if (sleep > 0) {
      await new Promise<void>((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason);
        const timer = setTimeout(resolve, sleep);
        const onAbort = () => {
          clearTimeout(timer);
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
      });
    }
    const base = { stdout: '', stderr: '', durationMs: Date.now() - t0 };
    if (task.code.includes('raise ValueError')) {
      return {
        ...base,
        status: 'code_error',
        errorType: 'runtime',
        errorName: 'ValueError',
        message: 'scripted failure',
        traceback: '',
      };
    }
    const attempt = Number(/results = \{'attempt': (\d+)\}/.exec(task.code)?.[1] ?? 0);
    return { ...base, status: 'ok', results: { attempt, mode: task.mode }, figures: [] };
  }
}

/** Prometheus text → samples; `value(name, labels)` sums the samples whose labels include `labels`. */
export function parseMetrics(text: string) {
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  const families = new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!));
  const value = (name: string, labels: Record<string, string> = {}) =>
    samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  const has = (name: string, labels: Record<string, string> = {}) =>
    samples.some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return { samples, families, value, has };
}
