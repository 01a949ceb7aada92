/**
 * The scale check of issue #7 at full size: N worker processes per stage (separate OS processes)
 * on one redis-server, 1,000 requests through generation, analysis, execution and result. The
 * plug-ins are the countable fakes of test/support/ops-fakes.ts (no LLM, no Python subprocess),
 * so the figures measure the fleet itself: queues, hand-offs, workers, Redis.
 *
 * Run: node --import tsx bench/scale.bench.ts [--processes-per-stage N] [--requests R] [--concurrency C]
 * Writes bench/results/scale.md (and fails if a request was lost, ran twice, or metrics disagree).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runScale } from '../test/support/ops-scale.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const processesPerStage = arg('--processes-per-stage', 2);
const requests = arg('--requests', 1000);
const concurrency = arg('--concurrency', 4);

const report = await runScale({
  processesPerStage,
  requests,
  concurrency,
  log: (l) => process.stderr.write(`scale: ${l}\n`),
});
const ok =
  report.lost === 0 &&
  report.notExecuted === 0 &&
  report.executedTwice === 0 &&
  Object.values(report.metrics).every((m) => m.summed === m.expected) &&
  report.exitCodes.every((c) => c === 0);

const redisVersion = execFileSync('redis-server', ['--version']).toString().trim();
const md = `# Scale: ${report.processes} worker processes on one Redis, ${report.requests} requests

\`node --import tsx bench/scale.bench.ts --processes-per-stage ${processesPerStage} --requests ${requests} --concurrency ${concurrency}\`
on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${redisVersion.split(' ').slice(0, 3).join(' ')}.

${processesPerStage} processes per stage (generation, analysis, approval-hold, execution, result), each
\`Fleet.start\` with concurrency ${concurrency} per stage, as \`pyexec worker <stage>\` runs it, with the
countable fakes of test/support/ops-fakes.ts behind the plug-in interfaces: a scripted generator (100
input tokens per generation), a pattern analyzer (a quarter of the requests write, approval off) and
an executor that counts each run in Redis (HINCRBY) and returns at once. No LLM and no Python: the
figures are the fleet's own cost (queues, hand-offs, workers, request records, Redis).

| figure | value |
| --- | --- |
| worker processes started (sequentially) | ${(report.startupMs / 1000).toFixed(1)} s |
| ${report.requests} requests submitted (batches of 50) | ${(report.submitMs / 1000).toFixed(1)} s |
| first submit to last terminal state | ${(report.drainMs / 1000).toFixed(1)} s |
| requests per second, end to end | ${report.requestsPerSecond.toFixed(1)} |
| terminal states | ${JSON.stringify(report.statuses)} |
| lost (no terminal state) | ${report.lost} |
| code never run / run more than once | ${report.notExecuted} / ${report.executedTwice} |
| exit codes after SIGTERM | ${[...new Set(report.exitCodes)].join(', ')} (all ${report.exitCodes.length}) |

Metrics summed over every process's \`/metrics\`:

| metric | summed | expected |
| --- | --- | --- |
${Object.entries(report.metrics)
  .map(([name, m]) => `| \`${name}\` | ${m.summed} | ${m.expected} |`)
  .join('\n')}

Result: ${ok ? 'none lost, none executed twice, the metrics add up.' : '**FAILED** (see the tables).'}
The CI variant (test/integration/ops-scale.redis.test.ts) runs 2 processes per stage and 200 requests.
`;
writeFileSync(path.join(import.meta.dirname, 'results/scale.md'), md);
process.stdout.write(md);
process.exitCode = ok ? 0 : 1;
