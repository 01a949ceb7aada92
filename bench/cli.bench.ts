/**
 * Start-up of the `pyexec` command, against a bare `node -e 0` (the floor) measured in the same run:
 * `pyexec --help`, `--version`, `analyze small.py` (the analyzer's Python helper included) and
 * `status` against a private redis-server; and `pyexec --help` through tsx (PYEXEC_DEV=1, how the
 * command ran before it was compiled) for comparison. Runs are interleaved (one of each per round,
 * in a rotating order), so a busy machine slows every case alike; ratios are of medians.
 *
 * Run: node --import tsx bench/cli.bench.ts [--rounds N]
 * Writes bench/results/cli.md. Needs dist/ (scripts/setup.sh builds it; this script builds it when missing).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../src/python-env.js';
import { startLocalRedis } from '../src/redis/redis-server.js';

const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 30;
const GOAL = 3;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

if (!existsSync(path.join(projectRoot, 'dist/.build-stamp'))) {
  execFileSync(process.execPath, [path.join(projectRoot, 'scripts/build.mjs')], { stdio: 'inherit' });
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'pyexec-cli-bench-'));
const small = path.join(dir, 'small.py');
writeFileSync(
  small,
  "from epics import caget\n\ncurrent = caget('BEAM:CURRENT')\nresults = {'current': current, 'ok': current is not None}\n",
);
const redis = await startLocalRedis();
const bin = path.join(projectRoot, 'bin/pyexec.js');

interface Case {
  readonly name: string;
  readonly args: string[];
  readonly env?: Record<string, string>;
  /** Exit codes that count as a normal run. */
  readonly ok?: number[];
}
const cases: Case[] = [
  { name: '`node -e 0` (the floor)', args: ['-e', '0'] },
  { name: '`pyexec --help`', args: [bin, '--help'] },
  { name: '`pyexec --version`', args: [bin, '--version'] },
  { name: '`pyexec analyze small.py`', args: [bin, 'analyze', small] },
  { name: '`pyexec status` (private redis-server)', args: [bin, '--redis', redis.url, 'status'] },
  {
    name: '`pyexec --help` through tsx (PYEXEC_DEV=1: no build step)',
    args: [bin, '--help'],
    env: { PYEXEC_DEV: '1' },
  },
];

const times = new Map<string, number[]>(cases.map((c) => [c.name, []]));
try {
  for (let round = 0; round < ROUNDS + 2; round++) {
    for (let i = 0; i < cases.length; i++) {
      const c = cases[(i + round) % cases.length]!;
      const t = performance.now();
      const res = spawnSync(process.execPath, c.args, {
        cwd: projectRoot,
        env: { ...process.env, PYEXEC_DEV: '', ...c.env },
        encoding: 'utf8',
      });
      const ms = performance.now() - t;
      if (res.status !== 0) throw new Error(`${c.name} exited ${res.status}: ${res.stderr}`);
      if (round >= 2) times.get(c.name)!.push(ms); // two warm-up rounds (file cache)
    }
  }
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}

const floor = pct(times.get(cases[0]!.name)!, 50);
const fmt = (x: number) => x.toFixed(1);
const rows = cases.map((c) => {
  const xs = times.get(c.name)!;
  const p50 = pct(xs, 50);
  return `| ${c.name} | ${xs.length} | ${fmt(p50)} | ${fmt(pct(xs, 90))} | ${fmt(Math.min(...xs))} | ${(p50 / floor).toFixed(2)}x |`;
});
const help = pct(times.get(cases[1]!.name)!, 50) / floor;
const tsxHelp = pct(times.get(cases[5]!.name)!, 50) / floor;
const status = pct(times.get(cases[4]!.name)!, 50);
const analyze = pct(times.get(cases[3]!.name)!, 50);
const headline =
  `| CLI start-up (bench/cli.bench.ts) | \`pyexec --help\` ${help.toFixed(2)}x a bare \`node -e 0\` (goal ${GOAL}x: ` +
  `${help <= GOAL ? 'met' : 'not met'}; ${tsxHelp.toFixed(1)}x through tsx); \`analyze small.py\` ${fmt(analyze)} ms, ` +
  `\`status\` ${fmt(status)} ms p50 |`;
const cpu = os.cpus()[0]?.model ?? 'unknown';
const md = `# CLI start-up benchmark
<!-- headline: ${headline} -->

Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; ${new Date().toISOString().slice(0, 10)}.
Wall time of one process from spawn to exit, in ms; ${ROUNDS} interleaved rounds (one run of each case per round,
in a rotating order, after two warm-up rounds). The ratio is each median over the median of \`node -e 0\`.
\`node --import tsx bench/cli.bench.ts --rounds ${ROUNDS}\`

| command | n | p50 | p90 | min | p50 / floor |
| --- | ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}

Goal: \`pyexec --help\` within ${GOAL}x \`node -e 0\`: **${help <= GOAL ? 'met' : 'not met'}** (${help.toFixed(2)}x).
\`bin/pyexec.js\` runs the compiled \`dist/\` (tsc) and \`src/cli/main.ts\` imports only commander and a few
small modules of its own: every verb imports what it uses when it runs, so \`--help\` and \`--version\` load neither
zod nor BullMQ, fastify, ioredis or the Jupyter client. \`analyze\` starts the analyzer's Python helper;
\`status\` loads ioredis and BullMQ and reads the queues of an empty Redis. The bin's staleness check (a stat of
every file under \`src/\`, so an edited checkout never runs a stale build) is inside every \`pyexec\` figure.
`;
writeFileSync(path.join(projectRoot, 'bench/results/cli.md'), md);
process.stdout.write(`${md}\n`);
