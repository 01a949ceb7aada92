/**
 * Analysis of a 1,000-line program against the parser plus `compile(tree)` (the compiler checks the
 * exact syntax verdict needs) and against a bare parse, with the same parser (CPython's, in the same
 * helper process), side by side in one run, as ratios; the cached answer the execution stage's
 * re-check of the same code gets (reported apart); and the analysis of small programs (every
 * program of test/fixtures/python/detection, 5–47 lines), interleaved in the same loop.
 *
 * Targets (issue 19): the 1,000-line program within 2.5× parse + compile and p95 ≤ 50 ms round trip;
 * programs of ≤ 100 lines ≤ 5 ms round trip (p95).
 *
 * Every iteration sends a distinct text (a counter in a padding comment, so still 1,000 lines) to
 * every operation: the helper's answer cache never serves the measured rows.
 *
 * With --baseline-python EXE, a second helper run by EXE (e.g. a wrapper that points PYTHONPATH at
 * an older checkout's python/ folder) is measured in the same loop, interleaved: before/after.
 *
 * Run: node --import tsx bench/analysis.bench.ts [--iterations N] [--blocks B] [--out FILE]
 *        [--baseline-python EXE --baseline-label TEXT]
 * Writes bench/results/analysis.md (or FILE).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PythonAnalyzer, PythonHelper } from '../src/analysis/index.js';
import { patternsFromConfig } from '../src/analysis/patterns.js';
import { parseConfig } from '../src/config.js';
import { pythonExecutable } from '../src/python-env.js';

const here = import.meta.dirname;
const programFile = path.join(here, '../test/fixtures/python/large/control-room-1000.py');
const program = readFileSync(programFile, 'utf8');
const smallDir = path.join(here, '../test/fixtures/python/detection');
const smallPrograms = readdirSync(smallDir)
  .filter((f) => f.endsWith('.py'))
  .sort()
  .map((f) => readFileSync(path.join(smallDir, f), 'utf8'));
const smallLines = smallPrograms.map((p) => p.split('\n').length);
if (Math.max(...smallLines) > 100) throw new Error('a small program has more than 100 lines');
/** Small programs analysed per iteration (cycling through them). */
const SMALL_PER_ITERATION = 4;
const TARGET_RATIO = 2.5;
const TARGET_P95_MS = 50;
const TARGET_SMALL_MS = 5;
const PADDING = '# (padding to 1,000 lines)';
if (!program.includes(PADDING)) throw new Error(`the program has no "${PADDING}" line to vary`);
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const iterations = Number(arg('--iterations', '200'));
const blocks = Number(arg('--blocks', '10'));
const outFile = arg('--out', path.join(here, 'results/analysis.md'));
const baselinePython = arg('--baseline-python', '');
const baselineLabel = arg('--baseline-label', 'baseline');
const WARMUP = 20;
/** What the numbers mean (the parts: measured in-process, CPU time, on the same machine, 2026-11-23). */
const NOTES = `## Where the time goes

One analysis of this program inside the helper (median CPU ms, garbage collector off as in the helper):

| part | ms | what |
| --- | ---: | --- |
| \`ast.parse\` | 8.8 | the same work as the bare parse row (which also frees its tree: +0.9) |
| \`compile(tree)\` | 5.9 | the compiler's own checks: 36 of the 74 rejections of the syntax table come only from it |
| collect (pass 1) | 3.0 | one walk over ~8,000 nodes: scopes, bindings, calls (a bare \`ast.walk\` alone costs ~6) |
| solve, round 1 | 5.6 | every expression evaluated once, each value recording what it read |
| solve, later rounds | 3.4 | only values whose reads went out of date (25 %, then 10 % of them here) |
| solve, out-of-date checks | 1.2 | after each round with changes |
| checker | 2.4 | every call, with its final values, in evaluation order |
| rest (stores and loads, freeing) | 1.8 | |

## Why 1.3× a bare parse (the earlier target) is out of reach

- The verdict must be CPython's own (\`compile(code)\`), and part of it exists only in the compiler, so every
  analysis pays \`ast.parse\` + \`compile(tree)\`: that alone is about 1.5× a bare parse (second row). A cheaper
  pre-check deciding when the compiler can be skipped would have to re-implement every compiler check (and
  its recursion and memory limits) exactly, per CPython version: not exact, so not done.
- 1.3× a bare parse leaves ~3 ms for the compiler checks and the walk together; the compiler alone takes ~6,
  and a Python walk over the tree's ~8,000 nodes costs more than 3 by itself.
- The ratio rewards a slow parser: with tree-sitter (WASM, ~13 ms for this program, slower than \`ast.parse\`)
  as "the parser" and CPython's verdict computed in parallel in another process, a fast walk could reach ~1.3×
  of that slower floor while every request got slower. A target on the exact-verdict floor (parse +
  compile) or on absolute latency measures what a user waits for; the issue's owner has to choose.

## What was changed, what did not help

- Kept: later solver rounds re-evaluate only out-of-date values; calls reach the checker once, after the
  fixpoint, in evaluation order; messages (source text) only for emitted findings; no reference cycles
  (the tree used to wait for the cyclic garbage collector) and that collector off during a request (for both
  ops, so the bare parse gains too); pass 1 spelled out for common nodes, its string literals reused for the
  pattern mask; answers cached by sha256 of code and options (the re-check row; never in the ratios).
- \`compile(tree)\` in a thread: no overlap (the compiler holds the GIL); slower.
- \`compile(code)\` in a second process during the walk: slower on this 2-core machine shared with other work
  (no idle core: 37–52 ms against 33–49 ms in turn), and 3 ms more CPU per analysis; not kept.
- \`compile(code)\` instead of \`compile(tree)\`: 8.8 ms against 5.9 ms.
- Skipping unchanged events in later rounds: would save under 0.5 ms; not worth the bookkeeping.
- Compiling the walk (measured once, 2026-11-23, with a scratch harness outside bench/, interleaved, 100
  rounds): Cython 2.93× a bare parse, mypyc 2.76×; with \`compile(code)\` in a second process as well 2.21×
  (mypyc). Both compiled builds gave byte-identical reports on the fixtures and passed the analysis tests, but
  they need a C toolchain at set-up, a compiled module silently shadows an edited .py, and mypyc turns a wrong
  annotation into a run-time TypeError; 1.3× stays far off (a compiled visitor that does nothing over the
  8,145 nodes already costs 1.3 ms; the real walk is ~9× that). Not kept.
- Widening of values that grow (a name rebound to something derived from itself, strings built in loops)
  and a fixed iteration order, added after the figures above were first taken: ~5 % on this program (the
  "analysis now / before" row when run against the commit before them), in exchange for a fixed point on
  ordinary code the analysis used to give up on.
- Following what ordinary code does with control-system objects and commands (2026-11-24: dict keys,
  zip/enumerate/items pairs, callbacks of library calls, generators, context managers, properties, command
  strings word by word, code run from data): 1.10–1.15× on this program (the "analysis now / before" row
  when run against 60c76b2), in exchange for 206 of 210 adversarial write programs found instead of 89.
- Library objects that hold things (queues, tqdm, pandas Series), the program's own special methods
  (__iter__, __getitem__, __getattr__), dataclass fields, vars(), callbacks given to pyepics, getattr by a
  computed name resolved over the program's own classes, and values with nothing yet kept as nothing for
  the first two rounds (2026-11-24, second session of the day): the "analysis now / before" row, run against
  2ab1485. In exchange: review4's 235 hostile write programs 26 → 4 missed, 23 write fixtures missed at
  2ab1485 found; false alarms on 449 read-only programs 20 → 9 (the 9: pickle loads and computed getattr on
  EPICS classes, by design), and 10 stdlib modules that dispatch by name no longer possible writes.
- Values as named types (issue 19, 2026-12-03: Lib, Str, Container ... subclasses of tuple) cost 1.13× at
  first (the "analysis now / base 5b44309" row): a class pattern with fields in \`match\` costs ~1.5 µs (an
  isinstance, a lookup of __match_args__, a set of the names seen) and a class call into the generated
  __new__ ~0.6 µs, against ~0.1 for a comparison of the tag. Won back, with the same reports (the
  recorded-corpus hash check) and the same types: the hot paths dispatch on the exact type (an \`is\`
  ladder), string constants' value sets and library paths come from bounded shared tables, and ordered()
  sorts by a kept repr. Instructions per analysis of this program (callgrind, the same in every run, unlike
  time on a shared machine): base 5b44309 253.8 M, named types with \`match\` 272.1 M (+7.2 %), now 254.2 M
  (+0.2 %); parse and compile included. In time, "analysis now / base 5b44309" reads 1.03× (spread
  1.01–1.06); this loop favours the second helper by about that much: the same code against itself (a
  wrapper on a copy of this commit's python/) reads 1.03× too (spread 0.94–1.14, load average ~9), and the
  bare parse, the same code in both helpers, is 1.08× in this run (the first helper also serves the
  compile, cache and patterns rows).
`;

/** The program with a distinct padding comment: same lines, same parse, a different sha256. */
let variant = 0;
const fresh = () => program.replace(PADDING, `${PADDING} run ${++variant}`);

const config = parseConfig({});
const patterns = patternsFromConfig(config);
const helper = new PythonHelper({ python: config.pyexec.python });
const analyzer = new PythonAnalyzer({ patterns, helper });
const withPatterns = new PythonAnalyzer({
  patterns: patternsFromConfig(
    parseConfig({
      control_system: { patterns: { epics: { write: ['facility_set\\s*\\('], read: ['facility_get\\('] } } },
    }),
  ),
  helper,
});
const baseHelper = baselinePython ? new PythonHelper({ python: baselinePython }) : undefined;
const baseAnalyzer = baseHelper ? new PythonAnalyzer({ patterns, helper: baseHelper }) : undefined;

type Sample = { wall: number; inner: number; i: number };
type Row =
  | 'parse'
  | 'parseCompile'
  | 'analysis'
  | 'patterns'
  | 'cached'
  | 'small'
  | 'baseParse'
  | 'baseAnalysis'
  | 'baseSmall';
const samples: Record<Row, Sample[]> = {
  small: [],
  baseSmall: [],
  parse: [],
  parseCompile: [],
  analysis: [],
  patterns: [],
  cached: [],
  baseParse: [],
  baseAnalysis: [],
};

async function timeAnalyze(a: PythonAnalyzer, code: string, i: number, out: Sample[] | undefined): Promise<void> {
  const t = performance.now();
  const r = await a.analyze(code);
  const wall = performance.now() - t;
  out?.push({ wall, inner: (r.timingsMs?.verdict ?? 0) + (r.timingsMs?.walk ?? 0), i });
}
async function timeParse(
  h: PythonHelper,
  code: string,
  compile: boolean,
  i: number,
  out: Sample[] | undefined,
): Promise<void> {
  const t = performance.now();
  const r = (await h.request('parse', code, compile ? { compile: true } : {})) as {
    syntax_ok: boolean;
    timings_ms: { parse: number };
  };
  const wall = performance.now() - t;
  if (!r.syntax_ok) throw new Error('the benchmark program does not parse');
  out?.push({ wall, inner: r.timings_ms.parse, i });
}

/** One interleaved iteration: every operation sees the same machine load. */
async function iteration(record: boolean, i: number): Promise<void> {
  const code = fresh();
  const rec = (row: Row) => (record ? samples[row] : undefined);
  const small = Array.from(
    { length: SMALL_PER_ITERATION },
    (_, j) => `${smallPrograms[(i * SMALL_PER_ITERATION + j) % smallPrograms.length]!}\n# run ${++variant}\n`,
  );
  const current = async () => {
    await timeParse(helper, code, false, i, rec('parse'));
    await timeAnalyze(analyzer, code, i, rec('analysis'));
    await timeParse(helper, code, true, i, rec('parseCompile'));
    await timeAnalyze(analyzer, code, i, rec('cached')); // the same text again: the re-check's cache hit
    for (const p of small) await timeAnalyze(analyzer, p, i, rec('small'));
  };
  const baseline = async () => {
    if (!baseHelper || !baseAnalyzer) return;
    await timeParse(baseHelper, code, false, i, rec('baseParse'));
    await timeAnalyze(baseAnalyzer, code, i, rec('baseAnalysis'));
    for (const p of small) await timeAnalyze(baseAnalyzer, p, i, rec('baseSmall'));
  };
  // Alternate which helper goes first, so neither always runs right after the other.
  if (i % 2) {
    await current();
    await baseline();
  } else {
    await baseline();
    await current();
  }
  if (i % 4 === 0) await timeAnalyze(withPatterns, fresh(), i, rec('patterns'));
}

for (let i = 0; i < WARMUP; i++) await iteration(false, i);
for (let i = 0; i < iterations; i++) await iteration(true, i);
await helper.close();
await baseHelper?.close();

const quantile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};
const med = (xs: Sample[], k: 'wall' | 'inner') =>
  quantile(
    xs.map((x) => x[k]),
    0.5,
  );
const p95 = (xs: Sample[], k: 'wall' | 'inner') =>
  quantile(
    xs.map((x) => x[k]),
    0.95,
  );
const fmt = (n: number) => n.toFixed(2);
const ratio = (a: Row, b: Row, k: 'wall' | 'inner') => med(samples[a], k) / med(samples[b], k);

/** The ratio in each consecutive block of iterations: the run-to-run spread. */
function spread(a: Row, b: Row, k: 'wall' | 'inner'): string {
  const size = Math.max(4, Math.floor(iterations / blocks));
  const rs: number[] = [];
  for (let start = 0; start + size <= iterations; start += size) {
    const block = (row: Row) => samples[row].filter((s) => s.i >= start && s.i < start + size);
    rs.push(med(block(a), k) / med(block(b), k));
  }
  return `${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)}`;
}

const python = execFileSync(
  pythonExecutable(config.pyexec.python),
  ['-c', 'import sys; print(sys.version.split()[0])'],
  {
    encoding: 'utf8',
  },
).trim();
const rows: Array<[string, Row]> = [
  ['bare parse (`ast.parse`)', 'parse'],
  ['parse + `compile(tree)` (the exact verdict, no walk)', 'parseCompile'],
  ['**analysis** (verdict + walk)', 'analysis'],
  ['analysis with 2 configured patterns', 'patterns'],
  ['re-check of the same code (answer cache hit; not a measured ratio)', 'cached'],
  [`analysis of a small program (${smallPrograms.length} programs of 5–${Math.max(...smallLines)} lines)`, 'small'],
  ...(baseHelper
    ? ([
        [`${baselineLabel}: bare parse`, 'baseParse'],
        [`${baselineLabel}: analysis`, 'baseAnalysis'],
        [`${baselineLabel}: analysis of a small program`, 'baseSmall'],
      ] as Array<[string, Row]>)
    : []),
];
const table = [
  '| operation | median ms (round trip) | p95 ms (round trip) | median ms (inside the helper) |',
  '| --- | ---: | ---: | ---: |',
  ...rows.map(
    ([name, row]) =>
      `| ${name} | ${fmt(med(samples[row], 'wall'))} | ${fmt(p95(samples[row], 'wall'))} | ${fmt(med(samples[row], 'inner'))} |`,
  ),
].join('\n');
const ratioRows: Array<[string, Row, Row]> = [
  [`analysis / (parse + compile) (target ≤ ${TARGET_RATIO}×)`, 'analysis', 'parseCompile'],
  ['analysis / bare parse (the earlier target: ≤ 1.3×)', 'analysis', 'parse'],
  ['analysis with patterns / bare parse', 'patterns', 'parse'],
  ...(baseHelper
    ? ([
        [`${baselineLabel}: analysis / bare parse`, 'baseAnalysis', 'baseParse'],
        [`analysis now / ${baselineLabel} analysis`, 'analysis', 'baseAnalysis'],
        [`small programs: analysis now / ${baselineLabel}`, 'small', 'baseSmall'],
      ] as Array<[string, Row, Row]>)
    : []),
];
const ratios = [
  '| ratio (medians) | round trip | spread over blocks | inside the helper | spread over blocks |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...ratioRows.map(
    ([name, a, b]) =>
      `| ${name} | ${ratio(a, b, 'wall').toFixed(2)}× | ${spread(a, b, 'wall')} | ${ratio(a, b, 'inner').toFixed(2)}× | ${spread(a, b, 'inner')} |`,
  ),
].join('\n');

const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, load average ${os
  .loadavg()
  .map((l) => l.toFixed(1))
  .join(' ')} at the end (other work shares the machine)`;
const vsCompile = ratio('analysis', 'parseCompile', 'wall');
const bigP95 = p95(samples.analysis, 'wall');
const smallP95 = p95(samples.small, 'wall');
const met = (ok: boolean) => (ok ? 'met' : 'not met');
const targets = [
  '| target (issue 19) | measured | |',
  '| --- | ---: | --- |',
  `| 1,000 lines: analysis ≤ ${TARGET_RATIO}× parse + compile (medians, round trip) | ${vsCompile.toFixed(2)}× | ${met(vsCompile <= TARGET_RATIO)} |`,
  `| 1,000 lines: p95 round trip ≤ ${TARGET_P95_MS} ms | ${fmt(bigP95)} ms | ${met(bigP95 <= TARGET_P95_MS)} |`,
  `| ≤ 100 lines: p95 round trip ≤ ${TARGET_SMALL_MS} ms (median ${fmt(med(samples.small, 'wall'))} ms) | ${fmt(smallP95)} ms | ${met(smallP95 <= TARGET_SMALL_MS)} |`,
].join('\n');
const headline = `| static analysis (bench/analysis.bench.ts) | 1,000-line program: analysis ${vsCompile.toFixed(2)}x parse+compile (target ${TARGET_RATIO}x: ${met(
  vsCompile <= TARGET_RATIO,
)}), p95 ${fmt(bigP95)} ms (target ${TARGET_P95_MS}: ${met(bigP95 <= TARGET_P95_MS)}); programs of <= 100 lines p95 ${fmt(smallP95)} ms (target ${TARGET_SMALL_MS}: ${met(
  smallP95 <= TARGET_SMALL_MS,
)})${
  baseHelper
    ? `; ${ratio('analysis', 'baseAnalysis', 'wall').toFixed(2)}x the analysis of ${baselineLabel} in the same run`
    : ''
} |`;
const report = `# Static analysis benchmark
<!-- headline: ${headline} -->

Program: \`test/fixtures/python/large/control-room-1000.py\` (1,000 lines, ${program.length} characters: EPICS reads and
writes through aliases, classes holding PVs, comprehensions). Same parser on both sides: CPython's own, in the
long-lived analysis helper; round trip = JSON over the helper's pipes, as the analysis worker sees it. Each
iteration sends a distinct text (a counter in a padding comment), so no answer comes from the helper's cache
except in the row that says so. Small programs: every program of \`test/fixtures/python/detection\`
(${smallPrograms.length}, 5–${Math.max(...smallLines)} lines), ${SMALL_PER_ITERATION} an iteration in turn, each with a distinct comment.${
  baseHelper
    ? ` "${baselineLabel}": the same loop against a second helper running an older analysis, interleaved
(\`--baseline-python\` ${path.basename(baselinePython)}: a wrapper that sets PYTHONPATH to the python/ folder of
\`git archive <commit> python\` and runs .venv/bin/python).`
    : ''
}

Machine: ${machine};
Node ${process.version}, Python ${python}; ${iterations} interleaved iterations after ${WARMUP} warm-up rounds, spread = lowest–highest
ratio of medians over ${blocks} consecutive blocks; ${new Date().toISOString().slice(0, 10)}.

${table}

${ratios}

${targets}

The earlier target, ≤ 1.3× a bare parse, was replaced by these in issue 19: not reachable with an exact
verdict (see below).

${NOTES}`;
writeFileSync(outFile, report);
process.stdout.write(`${table}\n\n${ratios}\n`);
