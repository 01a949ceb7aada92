import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createAnalyzer } from '../../../src/analysis/index.js';
import { parseConfig } from '../../../src/config.js';

const analyzer = createAnalyzer(parseConfig({}));
after(() => analyzer.close());

const cases: Array<{ name: string; code: string; rule: string; severity: string; line: number }> = [
  {
    name: 'subprocess through an alias',
    code: 'from subprocess import run as r\nr(["ls"])\n',
    rule: 'process-spawn',
    severity: 'high',
    line: 2,
  },
  { name: 'os.system', code: 'import os\nos.system("ls")\n', rule: 'process-spawn', severity: 'high', line: 2 },
  { name: 'ctypes import', code: 'import ctypes\n', rule: 'ctypes', severity: 'high', line: 1 },
  { name: 'exec', code: 'exec("x = 1")\n', rule: 'dynamic-code', severity: 'high', line: 1 },
  { name: 'eval through a variable', code: 'e = eval\ne("1 + 1")\n', rule: 'dynamic-code', severity: 'high', line: 2 },
  { name: '__import__', code: 'm = __import__("json")\n', rule: 'dynamic-import', severity: 'medium', line: 1 },
  {
    name: 'file write outside the execution folder',
    code: 'open("/etc/motd", "w").write("x")\n',
    rule: 'file-write',
    severity: 'medium',
    line: 1,
  },
  {
    name: 'pathlib write under the home folder',
    code: 'from pathlib import Path\n(Path.home() / "x.txt").write_text("x")\n',
    rule: 'file-write',
    severity: 'medium',
    line: 2,
  },
  { name: 'socket', code: 'import socket\ns = socket.socket()\n', rule: 'network', severity: 'medium', line: 2 },
  {
    name: 'HTTP client',
    code: 'import urllib.request\nurllib.request.urlopen("http://x")\n',
    rule: 'network',
    severity: 'medium',
    line: 2,
  },
  {
    name: 'a secret environment variable',
    code: 'import os\nk = os.environ["OPENAI_API_KEY"]\n',
    rule: 'secrets-access',
    severity: 'high',
    line: 2,
  },
  {
    name: 'the service config file',
    code: 'cfg = open("../config.yml").read()\n',
    rule: 'secrets-access',
    severity: 'high',
    line: 1,
  },
  {
    name: 'the whole environment',
    code: 'import os\nenv = dict(os.environ)\n',
    rule: 'secrets-access',
    severity: 'medium',
    line: 2,
  },
];

describe('risky operations', () => {
  for (const c of cases) {
    it(`flags ${c.name} as ${c.rule} (${c.severity})`, async () => {
      const r = await analyzer.analyze(c.code);
      const f = r.findings.find((x) => x.rule === c.rule);
      assert.ok(f, JSON.stringify(r.findings));
      assert.equal(f.severity, c.severity);
      assert.equal(f.line, c.line);
      assert.equal(r.risk, c.severity === 'high' ? 'high' : 'medium');
      // Starting a process or opening a connection is a possible write of its own (a read-only
      // kernel may do neither); every other risky operation names no write.
      const own = c.rule === 'process-spawn' ? 'process' : c.rule === 'network' ? 'network' : null;
      assert.deepEqual(r.detectedPatterns?.writes ?? [], own ? [own] : [], JSON.stringify(r.findings));
      if (own) assert.ok(r.findings.some((x) => x.rule === `epics-${own}` && /possible EPICS write/.test(x.message)));
    });
  }

  it('leaves ordinary look-alikes alone: model.eval(), urlopen-named locals, relative file writes', async () => {
    const code = [
      'class M:',
      '    def eval(self):',
      '        return 1',
      'def urlopen(x):',
      '    return x',
      'M().eval()',
      'urlopen("a")',
      'with open("out/data.csv", "w") as fh:',
      '    fh.write("1")',
      'import os',
      'home = os.environ.get("HOME")',
      "results = {'ok': True}",
    ].join('\n');
    const r = await analyzer.analyze(code);
    assert.deepEqual(r.findings, []);
    assert.equal(r.risk, 'low');
  });

  it('warns (low) when `results` is never assigned, and not when it is', async () => {
    const missing = await analyzer.analyze('x = 1\n');
    assert.equal(missing.assignsResults, false);
    assert.ok(missing.findings.some((f) => f.rule === 'results-missing' && f.severity === 'low'));
    assert.equal(missing.risk, 'low');
    const present = await analyzer.analyze('results = {"x": 1}\n');
    assert.equal(present.assignsResults, true);
    assert.ok(!present.findings.some((f) => f.rule.startsWith('results')));
  });
});

describe('commands whose programs the analysis cannot see', () => {
  const cases: Array<{ name: string; code: string; hidden: RegExp | null }> = [
    {
      name: 'a known tool with known arguments',
      code: 'import subprocess\nsubprocess.run(["ls", "-l"])\n',
      hidden: null,
    },
    {
      name: 'a shell given its whole command with -c',
      code: 'import subprocess\nsubprocess.run(["bash", "-c", "ls -l"])\n',
      hidden: null,
    },
    {
      name: 'a shell running a script file',
      code: 'import subprocess\nsubprocess.run(["bash", "ramp.sh"])\n',
      hidden: /runs bash, whose commands/,
    },
    {
      name: 'a pipe into a shell',
      code: 'import os\nos.system("cat cmds.txt | sh")\n',
      hidden: /runs sh, whose commands/,
    },
    {
      name: 'a tool named by a value the analysis cannot resolve',
      code: 'import subprocess, sys\nsubprocess.run([sys.argv[1], "SR:X", "1"])\n',
      hidden: /cannot resolve/,
    },
    {
      name: 'os.spawnlp names its program in the second argument',
      code: 'import os\nos.spawnlp(os.P_WAIT, "ls", "ls", "-l")\n',
      hidden: null,
    },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.hidden ? 'a hidden command' : 'nothing hidden'}`, async () => {
      const report = await analyzer.analyze(c.code);
      assert.ok(report.findings.some((f) => f.rule === 'process-spawn'));
      const write = report.findings.find((f) => f.rule === 'epics-possible-write');
      // Every process is a possible write (`process`); a hidden command is one more, that says why.
      assert.equal(report.hasWrites, true);
      assert.ok(report.findings.some((f) => f.rule === 'epics-process'));
      if (c.hidden) {
        assert.match(write?.message ?? '', c.hidden);
      } else {
        assert.equal(write, undefined, JSON.stringify(report.findings));
        assert.deepEqual(report.detectedPatterns?.writes, ['process']);
      }
    });
  }
});

describe('dynamic access by a computed name', () => {
  it('is no way to EPICS on numpy, a logger or a string; it is on os', async () => {
    const head = 'import epics, json, os, numpy as np, logging\ncfg = json.load(open("c.json"))\n';
    const plain = await analyzer.analyze(
      `${head}getattr(np, cfg["f"])([1.0])\ngetattr(logging.getLogger("x"), cfg["level"])("m")\n`,
    );
    assert.equal(plain.hasWrites, false, JSON.stringify(plain.findings));
    const gateway = await analyzer.analyze(`${head}getattr(os, cfg["f"])("x")\n`);
    assert.equal(gateway.hasWrites, true);
  });

  it("on the program's own object is any attribute its class and the program give it, whose name fits", async () => {
    const head = 'import epics, json, threading\ncfg = json.load(open("c.json"))\n';
    const cls = [
      'class Ramp:',
      '    def read_current(self):',
      '        return epics.caget("SR:DCCT")',
      '    def set_current(self, v):',
      '        epics.caput("SR:PS:SP", v)',
    ].join('\n');
    const reads = await analyzer.analyze(`${head}${cls}\nr = Ramp()\ngetattr(r, "read_" + cfg["what"])()\n`);
    assert.equal(reads.hasWrites, true, 'set_current itself writes'); // the method is analysed wherever it is
    assert.ok(
      !reads.findings.some((f) => f.rule === 'epics-dynamic'),
      'read_* names no write method: no dynamic access finding',
    );
    const onlyReads = await analyzer.analyze(
      `${head}class Probe:\n    def read_x(self):\n        return epics.caget("X")\n` +
        'getattr(Probe(), "read_" + cfg["what"])()\n',
    );
    assert.equal(onlyReads.hasWrites, false, JSON.stringify(onlyReads.findings));
    const stored = await analyzer.analyze(
      `${head}class Box:\n    pass\nb = Box()\nsetattr(b, cfg["k"], epics.Motor("M1"))\ngetattr(b, cfg["j"]).move(1)\n`,
    );
    assert.equal(stored.hasWrites, true, 'setattr with a computed name: any attribute, so dynamic access');
    const libraryBase = await analyzer.analyze(
      `${head}class Worker(threading.Thread):\n    pass\ngetattr(Worker(), cfg["action"])()\n`,
    );
    assert.equal(libraryBase.hasWrites, true, 'a library base class: attributes the analysis cannot list');
    assert.ok(libraryBase.findings.some((f) => f.rule === 'epics-dynamic' && /dynamic access/.test(f.message)));
  });

  it('runs unseen code: exec of a computed string is a possible write even without an EPICS import', async () => {
    const report = await analyzer.analyze('import sys\nexec(sys.stdin.read())\n');
    assert.equal(report.hasWrites, true);
    assert.ok(report.findings.some((f) => f.rule === 'epics-dynamic' && /cannot see/.test(f.message)));
  });
});
