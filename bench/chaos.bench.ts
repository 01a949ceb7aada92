/**
 * The longer chaos run of issue #15: the fleet as separate worker processes per stage on real parts
 * (redis-server with AOF, Jupyter servers and kernels, the soft IOC, the approver API), ≥ 200
 * requests and ≥ 40 kill -9s spread over every stage (execution while its code runs), redis-server
 * restarts from its append-only file and Jupyter servers killed with their kernels. Beside it, in
 * the same run, the same requests on a calm fleet: the ratio says what the chaos costs.
 *
 * Run: node --import tsx bench/chaos.bench.ts [--requests N] [--stage-kills K] [--execution-kills E]
 *        [--redis-restarts R] [--jupyter-kills J] [--no-baseline]
 * Writes bench/results/chaos.md; exits 1 if a request was lost, ended twice, or a write ran twice.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ChaosOptions, type ChaosReport, describeReport, runChaos } from '../test/support/chaos.js';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const base: ChaosOptions = {
  requests: arg('--requests', 240),
  writeEvery: 3,
  errorEvery: 10,
  rejectEvery: 5,
  stageKills: arg('--stage-kills', 5),
  executionKills: arg('--execution-kills', 14),
  redisRestarts: arg('--redis-restarts', 3),
  jupyterKills: arg('--jupyter-kills', 3),
  executionProcesses: 2,
  jupyterServers: 2,
  sparesPerMode: 2,
  submitGapMs: 150,
  killGapMs: 2000,
  finishTimeoutMs: 900_000,
  seed: arg('--seed', 2026),
  log: (line) => process.stderr.write(`${line}\n`),
};

const chaos = await runChaos(base);
const calm: ChaosReport | null = process.argv.includes('--no-baseline')
  ? null
  : await runChaos({ ...base, stageKills: 0, executionKills: 0, redisRestarts: 0, jupyterKills: 0, killGapMs: 0 });

const killTotal = Object.values(chaos.kills).reduce((a, b) => a + b, 0);
const ok = (r: ChaosReport) =>
  r.lost.length === 0 &&
  r.endedTwice.length === 0 &&
  r.writesRunTwice.length === 0 &&
  r.succeededWritesNotOnce.length === 0 &&
  r.refusedWritesRun.length === 0 &&
  r.readOnlyNeedsReview.length === 0;
const perMinute = (r: ChaosReport) => (r.requests / (r.durationMs / 60_000)).toFixed(1);
const ratio = calm ? (chaos.durationMs / calm.durationMs).toFixed(2) : 'n/a';
const redisVersion = execFileSync('redis-server', ['--version']).toString().trim();
const list = (xs: string[]) => (xs.length === 0 ? 'none' : xs.join('; '));
const row = (name: string, f: (r: ChaosReport) => string | number) =>
  `| ${name} | ${f(chaos)} |${calm ? ` ${f(calm)} |` : ''}`;

const md = `# Chaos: ${chaos.requests} requests, ${killTotal} kills
<!-- headline: | chaos (bench/chaos.bench.ts) | ${chaos.requests} requests, ${killTotal} kill -9s over every stage, Redis and Jupyter: ${chaos.lost.length} lost, ${chaos.endedTwice.length} ended twice, ${chaos.writesRunTwice.length} writes run twice; ${chaos.needsReview.total} writes ended needs_review; ${ratio}x the calm run's time | -->

\`node --import tsx bench/chaos.bench.ts --requests ${base.requests} --stage-kills ${base.stageKills} --execution-kills ${base.executionKills} --redis-restarts ${base.redisRestarts} --jupyter-kills ${base.jupyterKills}\`
on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version},
${redisVersion.split(' ').slice(0, 3).join(' ')} with \`appendonly yes\`, \`appendfsync always\`; ${new Date().toISOString().slice(0, 10)}.

One OS process per stage (generation, analysis, approval-hold, result) and ${base.executionProcesses} for execution, each
\`Fleet.start\` as \`pyexec worker <stage>\` runs it (test/support/chaos-fleet-entry.ts): the real analyzer and
policy, kernels on ${base.jupyterServers} Jupyter servers (${base.sparesPerMode} per mode each), the soft IOC, the approver API
in the driving process; the generator writes the request's program (test/support/chaos-programs.ts). A third of
the requests write a value of their own to \`MAG:QF1:CURRENT:SP\` (held, approved through the API, every
${base.rejectEvery}th rejected); the IOC logs every write request it receives, so each write's runs are counted at the IOC.
Every ${base.errorEvery}th request's first program raises (regenerated). Requests go in waves, one before each kill:
a stage's process is killed (SIGKILL) once a job of its queue is active, an execution process once its code has
run in a kernel for 0.4 s, redis-server is killed and started again on its append-only file a second later, a
Jupyter server is killed with its kernels and started again on its port. Killed processes are replaced after
0.3–1.5 s. The calm run: the same requests, the same fleet, no kills.

| figure | chaos |${calm ? ' calm |' : ''}
| --- | --- |${calm ? ' --- |' : ''}
${row('requests (writes; approved / rejected)', (r) => `${r.requests} (${r.writes}; ${r.approved} / ${r.rejected})`)}
${row('kill -9s by target', (r) => JSON.stringify(r.kills))}
${row('... of which hit a process at work', (r) => JSON.stringify(r.killsWhileWorking))}
${row('terminal states', (r) => JSON.stringify(r.byStatus))}
${row('details', (r) => JSON.stringify(r.byDetail))}
${row('**lost** (no terminal state)', (r) => r.lost.length)}
${row('**ended twice** (more than one `finished` event)', (r) => r.endedTwice.length)}
${row('**writes run twice** (value written twice at the IOC)', (r) => r.writesRunTwice.length)}
${row('succeeded writes not written exactly once', (r) => r.succeededWritesNotOnce.length)}
${row('rejected writes that reached the IOC', (r) => r.refusedWritesRun.length)}
${row('read-only requests ended needs_review', (r) => r.readOnlyNeedsReview.length)}
${row('writes ended needs_review (of which wrote once)', (r) => `${r.needsReview.total} (${r.needsReview.wrote})`)}
${row('jobs run again by the reaper (`-r<n>` ids)', (r) => r.requeuedJobs)}
${row('submits sent again (Redis away)', (r) => r.submitRetries)}
${row('run time, start-up to last end', (r) => `${(r.durationMs / 1000).toFixed(0)} s`)}
${row('requests per minute over the run', perMinute)}
${row('last submit to last end', (r) => `${(r.drainMs / 1000).toFixed(0)} s`)}

${calm ? `Chaos run time / calm run time: **${ratio}x**.\n\n` : ''}Result: ${ok(chaos) ? 'every request ended once; none lost; no write ran twice.' : '**FAILED**: see below.'}
${ok(chaos) ? '' : `\nLost: ${list(chaos.lost)}\n\nEnded twice: ${list(chaos.endedTwice)}\n\nWrites run twice: ${list(chaos.writesRunTwice)}\n`}
A write that ended \`needs_review\` was running when its execution process or its kernel died: it is never run again
automatically, and the IOC shows whether it wrote (at most once). The CI variant is
test/integration/chaos.redis.test.ts (30 requests, 8 kills).
`;
writeFileSync(path.join(import.meta.dirname, 'results/chaos.md'), md);
process.stdout.write(md);
process.stderr.write(`chaos: ${describeReport(chaos)}\n`);
process.exitCode = ok(chaos) && (!calm || ok(calm)) ? 0 : 1;
