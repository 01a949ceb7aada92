#!/usr/bin/env python3
"""A hash of the analysis' reports, per program and overall: proof that a change to
python/pyexec_runtime/analysis left every report as it was (a refactoring), or a list of the
programs whose report changed.

    .venv/bin/python scripts/analysis-report-hash.py [--set fixtures|all] [--requests FILE]
                                                      [--out FILE] [--check FILE]

Programs (each analysed as the Python helper does, `analyze(code, options)`, timings left out):
  fixtures  every program under test/fixtures (*.py, and the cases of python/syntax/cases.json),
            under the options the analyzer sends by default and under a second set (the built-in
            control-system model off, protected paths and an archiver configured);
  all       the fixtures, and every module of the project Python's standard library, pyepics and
            caproto (a few minutes: not a test);
  --requests FILE  also each `analyze` request of FILE (JSON lines as the helper reads them on
            stdin, with their own options). To record the programs the tests send: add, for one run
            and uncommitted, a line at the top of the request loop of analysis/server.py's main()
            that appends `raw` to FILE, then run the analysis tests (test/unit/analysis, approval).

Prints the overall hash (sha256 over the sorted per-program lines); --out writes the per-program
lines ("<sha256 16>  <program>"); --check FILE compares them with FILE and exits 1, naming the
programs that differ, when they are not the same. Runs under PYTHONHASHSEED=0 (re-executes itself).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "test" / "fixtures"
DEFAULT_OPTIONS = {"builtin_cs": True, "mask": True, "protected_paths": [], "archivers": []}
OTHER_OPTIONS = {
    "builtin_cs": False,
    "mask": True,
    "protected_paths": ["/etc/pyexec", "/home/operator/.ssh"],
    "archivers": ["http://archiver.example:17665/"],
}


def fixture_programs() -> list[tuple[str, str, dict]]:
    out = []
    for path in sorted(FIXTURES.rglob("*.py")):
        code = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ROOT))
        out.append((name, code, DEFAULT_OPTIONS))
        out.append((name + " [other options]", code, OTHER_OPTIONS))
    cases = json.loads((FIXTURES / "python" / "syntax" / "cases.json").read_text(encoding="utf-8"))["cases"]
    for case in cases:
        out.append((f"syntax/cases.json#{case['name']}", case["code"], DEFAULT_OPTIONS))
    return out


def library_programs() -> list[tuple[str, str, dict]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site = Path(sysconfig.get_paths()["purelib"])
    files = [(p, "stdlib/" + p.name) for p in sorted(stdlib.glob("*.py"))]
    for pkg in ("epics", "caproto"):
        files += [(p, f"{pkg}/{p.relative_to(site / pkg)}") for p in sorted((site / pkg).rglob("*.py"))]
    return [(name, p.read_text(encoding="utf-8"), DEFAULT_OPTIONS) for p, name in files]


def recorded_programs(file: str) -> list[tuple[str, str, dict]]:
    seen: dict[str, tuple[str, str, dict]] = {}
    for line in Path(file).read_text(encoding="utf-8").splitlines():
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if request.get("op") != "analyze":
            continue
        options = {k: v for k, v in (request.get("options") or {}).items() if k != "cache"}
        key = hashlib.sha256(json.dumps([request["code"], options], sort_keys=True).encode()).hexdigest()[:16]
        seen.setdefault(key, (f"request:{key}", request["code"], options))
    return sorted(seen.values())


def report_hash(code: str, options: dict) -> str:
    from pyexec_runtime.analysis.analyze import analyze

    report = analyze(code, dict(options))
    report.pop("timings_ms", None)
    return hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest()[:16]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=["fixtures", "all"], default="fixtures")
    parser.add_argument("--requests")
    parser.add_argument("--out")
    parser.add_argument("--check")
    args = parser.parse_args()
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    sys.path.insert(0, str(ROOT / "python"))
    programs = fixture_programs()
    if args.set == "all":
        programs += library_programs()
    if args.requests:
        programs += recorded_programs(args.requests)
    lines = sorted(f"{report_hash(code, options)}  {name}" for name, code, options in programs)
    overall = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{overall}  {len(lines)} reports ({args.set}{', requests' if args.requests else ''})")
    if args.check:
        want = {line.split("  ", 1)[1]: line for line in Path(args.check).read_text(encoding="utf-8").splitlines()}
        got = {line.split("  ", 1)[1]: line for line in lines}
        differ = sorted(n for n in want.keys() | got.keys() if want.get(n) != got.get(n))
        if differ:
            print(f"{len(differ)} reports differ from {args.check}:", *differ[:50], sep="\n  ")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
