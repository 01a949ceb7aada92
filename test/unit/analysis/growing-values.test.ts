import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createAnalyzer } from '../../../src/analysis/index.js';
import { parseConfig } from '../../../src/config.js';
import { pythonExecutable, pythonPackageDir } from '../../../src/python-env.js';

// Values that grow: a name rebound to something derived from itself, strings built in loops,
// concatenations of many strings. The analysis must reach a fixed point on them (no false
// "analysis-limit" write on ordinary code), stay bounded on hostile ones, keep every write it can
// see, and give the same answer in every process.

// The test asks for fixed points, not speed (bench/analysis.bench.ts): a loaded CI machine must not turn
// a slow module (pickle.py: ~4 s alone) into a timeout.
const analyzer = createAnalyzer(parseConfig({}), { timeoutMs: 120_000 });
after(() => analyzer.close());

const limitFindings = <F extends { rule: string }>(findings: readonly F[]) =>
  findings.filter((f) => f.rule === 'analysis-limit');

describe('names rebound to something derived from themselves', () => {
  const ordinary: Record<string, string> = {
    'pandas df = df.dropna()':
      "import pandas as pd\ndf = pd.read_csv('beam.csv')\ndf = df.dropna()\nresults = {'n': len(df)}\n",
    'numpy x = x.T': 'import numpy as np\nx = np.array([1, 2, 3])\nx = x.T\nresults = {}\n',
    'numpy in a loop':
      'import numpy as np\nx = np.ones(4)\nfor i in range(5):\n    x = x.reshape(2, 2).T.flatten()\nresults = {}\n',
    'xml tree walk':
      "import xml.etree.ElementTree as ET\nnode = ET.fromstring('<a/>')\nwhile node is not None:\n    node = node.find('b')\nresults = {}\n",
    'os.getcwd() then string methods':
      "import os\nd = os.getcwd()\nd = d.rstrip('/')\nd = d.replace('a', 'b')\nd = d.upper()\nresults = {'d': d}\n",
    'string wrapped in a loop': "s = 'x'\nfor _ in range(3):\n    s = '(' + s + ')'\nresults = {'s': s}\n",
    'a string method of a non-string': "v = round(1.234, 2)\ntext = str(v).strip()\nresults = {'t': text}\n",
    'join of a non-string': "sep = str(3)\nline = sep.join(['a', 'b'])\nresults = {'l': line}\n",
  };
  for (const [name, code] of Object.entries(ordinary)) {
    it(`${name}: no write, no analysis limit`, async () => {
      const r = await analyzer.analyze(code);
      assert.equal(r.syntaxOk, true);
      assert.equal(r.hasWrites, false, JSON.stringify(r.findings));
      assert.deepEqual(limitFindings(r.findings), []);
    });
  }

  it('data read from EPICS and reshaped in place is a read, not a write', async () => {
    const code =
      "from epics import caget\nv = caget('SR:ORBIT', as_numpy=True)\nv = v.reshape(4, 10)\nv = v.T\nv = v.round(3)\nresults = {'s': float(v.std())}\n";
    const r = await analyzer.analyze(code);
    assert.equal(r.hasWrites, false, JSON.stringify(r.findings));
    assert.equal(r.hasReads, true);
  });
});

describe('hostile growth stays bounded and keeps the writes', () => {
  it('an attribute chain that doubles every round ends, and a put on it is a possible write', async () => {
    const code =
      'import epics\nx = epics\nfor i in range(10):\n    x = x.a if i else x.b\n    x = x.c if i else x.d\nx.put("SR:X", 1)\nresults = {}\n';
    const r = await analyzer.analyze(code);
    assert.equal(r.syntaxOk, true);
    assert.equal(r.hasWrites, true);
  });

  it('a self-extending alias of the epics module that ends at a write is a write', async () => {
    const r = await analyzer.analyze("import epics\nw = epics\nw = w.ca\nw = w.put\nw('SR:X', 1)\nresults = {}\n");
    assert.equal(r.hasWrites, true);
    assert.ok(r.detectedPatterns?.writes.includes('epics.ca.put'), 'a write path stays exact when widened around');
  });

  it('string products of lists of constants end (merged), and a command among them is still found', async () => {
    const names = Array.from({ length: 16 }, (_, i) => `'N${i}'`).join(', ');
    const code = `import os\nnames = [${names}, 'caput SR:X 1']\nparts = [a + ':' + b + ':' + c + ':' + d for a in names for b in names for c in names for d in names]\nfor p in parts:\n    os.system(p)\nresults = {}\n`;
    const r = await analyzer.analyze(code);
    assert.equal(r.syntaxOk, true);
    assert.ok(r.detectedPatterns?.writes.includes('cli:caput'), JSON.stringify(r.detectedPatterns));
  });

  it('a string that grows with itself twice per round ends', async () => {
    const letters = Array.from({ length: 18 }, (_, i) => `'${String.fromCharCode(97 + i)}'`).join(', ');
    const code = `parts = [${letters}]\ns = ''\nfor p in parts:\n    s = s + p + '/' + p + s\nresults = {'s': s}\n`;
    const r = await analyzer.analyze(code);
    assert.equal(r.syntaxOk, true);
    assert.deepEqual(limitFindings(r.findings), []);
  });

  it('a secrets path among more strings than a value set keeps is still reported', async () => {
    const paths = Array.from({ length: 40 }, (_, i) => `'data/run${i}.csv'`).join(', ');
    const code = `paths = [${paths}, '/etc/pyexec/config.yml']\nfor p in paths:\n    with open(p) as f:\n        f.read()\nresults = {}\n`;
    const r = await analyzer.analyze(code);
    assert.ok(
      r.findings.some((f) => f.rule === 'secrets-access'),
      JSON.stringify(r.findings.map((f) => f.rule)),
    );
  });
});

/** A path of the project Python's sysconfig (stdlib, purelib). */
const sysconfigPath = (name: string) =>
  execFileSync(pythonExecutable(), ['-c', `import sysconfig; print(sysconfig.get_paths()['${name}'])`], {
    encoding: 'utf8',
  }).trim();

/**
 * Each file's report (timings aside, keys sorted), from a fresh Python under one PYTHONHASHSEED:
 * string hashes, and so the iteration order of sets of strings, differ between processes.
 */
const reportsUnderSeed = (seed: number, files: readonly string[]) =>
  new Promise<Record<string, string>>((resolve, reject) => {
    const script = [
      'import json, sys',
      'from pyexec_runtime.analysis.analyze import analyze',
      'out = {}',
      'for name in json.load(sys.stdin):',
      '    r = analyze(open(name, encoding="utf-8").read())',
      '    r.pop("timings_ms")',
      '    out[name] = json.dumps(r, sort_keys=True)',
      'print(json.dumps(out))',
    ].join('\n');
    const child = execFile(
      pythonExecutable(),
      ['-c', script],
      {
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
        env: { PATH: process.env['PATH'] ?? '', PYTHONPATH: pythonPackageDir, PYTHONHASHSEED: String(seed) },
      },
      (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout) as Record<string, string>)),
    );
    child.stdin!.end(JSON.stringify(files));
  });

describe('the same program, the same analysis, in every process', () => {
  const fixtures = path.join(import.meta.dirname, '../../fixtures/python/detection');
  const programs = [
    'write-getattr-over-many-names.py',
    'write-one-of-many-commands.py',
    'safe-rebinding-chains.py',
  ].map((f) => path.join(fixtures, f));

  it('reports are identical under six hash seeds', async () => {
    const runs = await Promise.all([0, 1, 2, 3, 42, 4242].map((seed) => reportsUnderSeed(seed, programs)));
    for (const run of runs.slice(1)) assert.deepEqual(run, runs[0]);
    const first = JSON.parse(runs[0]![programs[0]!]!) as { writes: string[] };
    assert.ok(first.writes.includes('epics.caput'), 'the caput among 21 getattr names is found');
  });
});

const stdlib = sysconfigPath('stdlib');
const stdlibModules = readdirSync(stdlib)
  .filter((f) => f.endsWith('.py'))
  .sort()
  .map((f) => path.join(stdlib, f));

const site = sysconfigPath('purelib');
const epicsCode = ['epics', 'caproto'].flatMap((pkg) =>
  (readdirSync(path.join(site, pkg), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.py'))
    .sort()
    .map((f) => path.join(site, pkg, f)),
);

// Each module is analysed once per hash seed, in two Python processes side by side (the standard
// library under seeds 1 and 4242; pyepics and caproto under seed 1), and both tests read those reports.
describe('larger real code: the standard library, pyepics and caproto', () => {
  let seed1: Record<string, string>;
  let seed4242: Record<string, string>;
  before(async () => {
    [seed1, seed4242] = await Promise.all([
      reportsUnderSeed(1, [...stdlibModules, ...epicsCode]),
      reportsUnderSeed(4242, stdlibModules),
    ]);
  });

  it('has modules to analyse', () => {
    assert.ok(stdlibModules.length > 150, `${stdlibModules.length} modules in ${stdlib}`);
    assert.ok(epicsCode.length > 100, `${epicsCode.length} modules of pyepics and caproto`);
  });

  it('gives every standard library module the same report under seeds 1 and 4242', () => {
    assert.equal(Object.keys(seed4242).length, stdlibModules.length);
    const differing = stdlibModules.filter((m) => seed1[m] !== seed4242[m]);
    assert.deepEqual(differing, []);
  });

  // Library code is denser than generated programs (classes, recursion, strings built in loops):
  // each module must end with a fixed point, without an error.
  it('analyses each without an error or an analysis limit', () => {
    const failures: string[] = [];
    let withWrites = 0;
    // Two modules still need more than the solver's 20 rounds (pydoc builds HTML from strings of
    // strings of unknown parts; tarfile settles at round 22): the analysis stops and says so (a
    // possible write). Known, left; any other module reaching the limit fails here.
    const knownLimit = new Set(['pydoc.py', 'tarfile.py']);
    for (const file of [...stdlibModules, ...epicsCode].filter((f) => !knownLimit.has(path.basename(f)))) {
      const text = seed1[file];
      if (text === undefined) {
        failures.push(`${file}: no report`);
        continue;
      }
      const r = JSON.parse(text) as {
        syntax_ok: boolean;
        syntax_error?: { message: string };
        findings: { rule: string; line: number; message: string }[];
        writes: unknown[];
      };
      if (!r.syntax_ok) failures.push(`${file}: syntax ${r.syntax_error?.message}`);
      const limits = limitFindings(r.findings).filter((f) => f.line === 0);
      if (limits.length > 0) failures.push(`${file}: ${limits[0]!.rule} ${limits[0]!.message}`);
      if (epicsCode.includes(file) && r.writes.length > 0) withWrites++;
    }
    assert.deepEqual(failures, []);
    assert.ok(withWrites > 10, `pyepics and caproto write to PVs in many modules, found in ${withWrites}`);
  });
});
