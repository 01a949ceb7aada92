/**
 * Analysis of a 1,000-line program against a bare parse of the same program with the same parser
 * (CPython's `ast.parse` in the same helper process), side by side in one run, as a ratio.
 *
 * Run: node --import tsx bench/analysis.bench.ts [--iterations N]
 * Writes bench/results/analysis.md.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PythonAnalyzer, PythonHelper } from '../src/analysis/index.js';
import { patternsFromConfig } from '../src/analysis/patterns.js';
import { parseConfig } from '../src/config.js';
import { pythonExecutable } from '../src/python-env.js';

const here = import.meta.dirname;
const programFile = path.join(here, '../test/fixtures/python/large/control-room-1000.py');
const code = readFileSync(programFile, 'utf8');
const iterArg = process.argv.indexOf('--iterations');
const iterations = iterArg > 0 ? Number(process.argv[iterArg + 1]) : 200;

const config = parseConfig({});
const helper = new PythonHelper({ python: config.pyexec.python });
const analyzer = new PythonAnalyzer({ patterns: patternsFromConfig(config), helper });
const withPatterns = new PythonAnalyzer({
  patterns: patternsFromConfig(
    parseConfig({
      control_system: { patterns: { epics: { write: ['facility_set\\s*\\('], read: ['facility_get\\('] } } },
    }),
  ),
  helper,
});

type Sample = { wall: number; inner: number };
const analyzeSamples: Sample[] = [];
const patternSamples: Sample[] = [];
const parseSamples: Sample[] = [];

async function timeAnalyze(a: PythonAnalyzer, out: Sample[]): Promise<void> {
  const t = performance.now();
  const r = await a.analyze(code);
  out.push({ wall: performance.now() - t, inner: (r.timingsMs?.verdict ?? 0) + (r.timingsMs?.walk ?? 0) });
}
async function timeParse(out: Sample[]): Promise<void> {
  const t = performance.now();
  const r = await analyzer.parseOnly(code);
  out.push({ wall: performance.now() - t, inner: r.parseMs });
}

for (let i = 0; i < 20; i++) {
  await timeAnalyze(analyzer, []);
  await timeParse([]);
}
for (let i = 0; i < iterations; i++) {
  // Interleaved, so both see the same machine load.
  await timeParse(parseSamples);
  await timeAnalyze(analyzer, analyzeSamples);
  if (i % 4 === 0) await timeAnalyze(withPatterns, patternSamples);
}
await helper.close();

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
};
const med = (xs: Sample[], k: keyof Sample) =>
  q(
    xs.map((x) => x[k]),
    0.5,
  );
const p95 = (xs: Sample[], k: keyof Sample) =>
  q(
    xs.map((x) => x[k]),
    0.95,
  );
const fmt = (n: number) => n.toFixed(2);
const ratioWall = med(analyzeSamples, 'wall') / med(parseSamples, 'wall');
const ratioInner = med(analyzeSamples, 'inner') / med(parseSamples, 'inner');
const python = execFileSync(
  pythonExecutable(config.pyexec.python),
  ['-c', 'import sys; print(sys.version.split()[0])'],
  {
    encoding: 'utf8',
  },
).trim();

const rows = [
  ['bare parse (`ast.parse`)', parseSamples],
  ['analysis (verdict + walk)', analyzeSamples],
  ['analysis with 2 configured patterns', patternSamples],
] as const;
const table = [
  '| operation | median ms (round trip) | p95 ms (round trip) | median ms (inside the helper) |',
  '| --- | ---: | ---: | ---: |',
  ...rows.map(([name, s]) => `| ${name} | ${fmt(med(s, 'wall'))} | ${fmt(p95(s, 'wall'))} | ${fmt(med(s, 'inner'))} |`),
].join('\n');
const report = `# Static analysis benchmark

Program: \`test/fixtures/python/large/control-room-1000.py\` (1,000 lines, ${code.length} characters: EPICS reads and
writes through aliases, classes holding PVs, comprehensions). Same parser on both sides: CPython's own, in the
long-lived analysis helper; round trip = JSON over the helper's pipes, as the analysis worker sees it.

Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB;
Node ${process.version}, Python ${python}; ${iterations} interleaved iterations after 20 warm-up rounds; ${new Date().toISOString().slice(0, 10)}.

${table}

**Ratio analysis / bare parse: ${ratioWall.toFixed(2)}× (round trip), ${ratioInner.toFixed(2)}× (inside the helper).**
Target was ≤ 1.3×: not met. See "Why" below.

## Why the ratio is above target

- The syntax verdict must equal \`compile(code, f, 'exec')\`, and part of that verdict comes from the compiler,
  not the parser ('return' outside function, duplicate arguments, 'await' outside function, nonlocal errors,
  too many statically nested blocks: 36 of the 74 rejections in the syntax table). So the analysis runs
  \`ast.parse\` and then \`compile(tree)\`; the compile step alone costs about half a parse.
- The walk is Python code over CPython's tree (pass 1 collects scopes and events, pass 2 evaluates them to a
  fixpoint, usually in 2 rounds because of self-referential updates such as \`results[k] = f(results)\`).

## Parser decision (measured)

| parser | parse of this 1,000-line program | verdicts equal to CPython on the syntax table |
| --- | ---: | ---: |
| CPython \`ast.parse\` (helper) | see table above (about 10 ms inside the helper) | 114 / 114 (it *is* CPython, plus \`compile(tree)\`) |
| web-tree-sitter 0.27.1 + tree-sitter-python 0.25.0 | 10.4 ms median (16.3 ms with a cursor walk over every node) | 62 / 114: accepts 52 programs CPython rejects (all compiler-stage errors, and parser errors such as \`print "x"\`, bad indentation, \`0777\`) |

tree-sitter was measured in a scratch folder (not added to the project): it is no faster here and cannot give
CPython's verdicts, so it would need CPython anyway.
`;
writeFileSync(path.join(here, 'results/analysis.md'), report);
process.stdout.write(
  `${table}\n\nratio (round trip) ${ratioWall.toFixed(2)}x, inside the helper ${ratioInner.toFixed(2)}x\n`,
);
