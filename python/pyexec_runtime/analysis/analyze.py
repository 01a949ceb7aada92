"""One analysis: CPython's syntax verdict, then the name-following walk (collect → solve → rules)."""

from __future__ import annotations

import ast
import re
import sys
import time
from typing import Any

from .collect import Collector
from .model import HIGH, LOW
from .rules import Checker
from .solve import Solver

FILENAME = "<pyexec>"
WALK_RECURSION_LIMIT = 20_000
MAX_NESTED_ANALYSES = 3
_NEWLINE = re.compile(r"\r\n|\r|\n")
_NOT_LINE_BREAK = re.compile(r"[^\r\n]")
_NON_DICT_LITERALS = (ast.List, ast.Tuple, ast.Set, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.JoinedStr)


def syntax_error(exc: BaseException) -> dict:
    if isinstance(exc, SyntaxError):
        return {
            "type": type(exc).__name__,
            "message": exc.msg or str(exc),
            "line": exc.lineno or 0,
            "column": (exc.offset - 1) if exc.offset and exc.offset > 0 else 0,
        }
    if isinstance(exc, MemoryError):
        message = str(exc) or "the source is too complex for CPython's parser"
    elif isinstance(exc, RecursionError):
        message = str(exc) or "maximum recursion depth exceeded during compilation"
    else:
        message = str(exc)
    return {"type": type(exc).__name__, "message": message, "line": 0, "column": 0}


def verdict(code: str) -> tuple[ast.Module | None, dict | None]:
    """The tree (when it can be built) and CPython's verdict on compile(code, f, 'exec').

    ast.parse raises exactly the parser's SyntaxErrors; compile(tree) then runs the compiler's own
    checks ('return' outside function, duplicate arguments, ...). Where building the Python-level
    tree hits a limit that compile(code) does not have, compile(code) itself decides.
    """
    try:
        tree = ast.parse(code, FILENAME)
    except SyntaxError as exc:
        return None, syntax_error(exc)
    except (RecursionError, MemoryError, ValueError):
        return None, _compile_source(code)
    try:
        compile(tree, FILENAME, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return tree, syntax_error(exc)
    except (RecursionError, MemoryError, ValueError):
        return tree, _compile_source(code)
    return tree, None


def _compile_source(code: str) -> dict | None:
    try:
        compile(code, FILENAME, "exec", dont_inherit=True)
    except (SyntaxError, RecursionError, MemoryError, ValueError) as exc:
        return syntax_error(exc)
    return None


def walk(tree: ast.Module, options: dict, outer: Solver | None = None, depth: int = 0) -> dict:
    collected = Collector(keep_strings=depth == 0 and bool(options.get("mask"))).run(tree)
    solver = Solver(collected, outer)

    def sub(text: str, mode: str, outer_solver: Solver | None) -> dict | None:
        if depth + 1 >= MAX_NESTED_ANALYSES:
            return None
        try:
            inner = ast.parse(text, FILENAME, mode=mode)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
        if mode == "eval":
            inner = ast.Module(body=[ast.Expr(value=inner.body, lineno=1, col_offset=0)], type_ignores=[])
        return walk(inner, options, outer_solver, depth + 1)

    checker = Checker(solver, options, sub)
    converged = solver.solve(checker)
    checker.check_stores_and_loads()
    if depth > 0:
        checker.defined_writes()
    solver.keep = None  # the checker's bound method: no Solver <-> Checker cycle left for the collector
    if not converged:
        checker.possible_write(
            None,
            "unresolved",
            "the analysis could not follow every name to a fixed point; treated as a possible write",
            "analysis-limit",
            HIGH,
        )
    return {
        "findings": checker.findings,
        "writes": sorted(checker.writes),
        "reads": sorted(checker.reads),
        "possible_writes": checker.possible_writes,
        "write_sites": checker.write_sites,
        "results": collected.results,
        "near_cs": solver.near_cs,
        "strings": collected.strings,
    }


def results_findings(results: list) -> list[dict]:
    if not results:
        return [
            {
                "rule": "results-missing",
                "severity": LOW,
                "line": 0,
                "column": 0,
                "message": "the program never assigns `results`: the execution will return no structured results",
            }
        ]
    values = [v for v in results if v is not None]
    if values and len(values) == len(results) and all(_non_dict(v) for v in values):
        first = values[0]
        return [
            {
                "rule": "results-not-dict",
                "severity": LOW,
                "line": first.lineno,
                "column": first.col_offset,
                "message": "`results` is assigned something that is not a dict",
            }
        ]
    return []


def _non_dict(node: Any) -> bool:
    if isinstance(node, ast.Constant):
        return True
    return isinstance(node, _NON_DICT_LITERALS)


def masked_source(code: str, tree: ast.Module, strings: list | None = None) -> str:
    """The source with string literals and comments blanked (same length and line breaks), for
    configured regex patterns: a pattern never matches inside a string or a comment.

    `strings`: the string literal nodes (the collector's, when it ran), else found in the tree."""
    if strings is None:
        strings = [
            node
            for node in ast.walk(tree)
            if type(node) is ast.JoinedStr or (type(node) is ast.Constant and isinstance(node.value, (str, bytes)))
        ]
    starts = [0] + [m.end() for m in _NEWLINE.finditer(code)]
    lines_bytes: dict[int, bytes] = {}
    size = len(code)

    def offset(line: int, col: int) -> int:
        if line - 1 >= len(starts):
            return size
        start = starts[line - 1]
        raw = lines_bytes.get(line)
        if raw is None:
            end = starts[line] if line < len(starts) else size
            raw = lines_bytes[line] = code[start:end].encode("utf-8", "surrogatepass")
        return start + len(raw[:col].decode("utf-8", "replace"))

    spans = []
    for node in strings:
        if node.end_lineno is None:
            continue
        a = offset(node.lineno, node.col_offset)
        b = min(offset(node.end_lineno, node.end_col_offset), size)
        if a < b:
            spans.append((a, b))
    spans.sort()
    pieces = []
    done = 0
    for a, b in spans:
        a = max(a, done)
        if a >= b:
            continue
        pieces.append(code[done:a])
        pieces.append(_NOT_LINE_BREAK.sub(" ", code[a:b]))
        done = b
    pieces.append(code[done:])
    text = "".join(pieces)
    out = []
    for line in text.splitlines(keepends=True) if "\x0c" not in text else _NEWLINE.split(text):
        hash_at = line.find("#")
        if hash_at >= 0:
            body = line.rstrip("\r\n")
            line = body[:hash_at] + " " * (len(body) - hash_at) + line[len(body) :]
        out.append(line)
    return "".join(out)


def analyze(code: str, options: dict | None = None) -> dict:
    options = options or {}
    t0 = time.perf_counter()
    tree, error = verdict(code)
    t1 = time.perf_counter()
    result: dict[str, Any] = {
        "syntax_ok": error is None,
        "syntax_error": error,
        "findings": [],
        "writes": [],
        "reads": [],
        "possible_writes": False,
        "write_sites": [],
        "assigns_results": False,
        "masked": None,
    }
    if tree is not None:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(WALK_RECURSION_LIMIT)
        try:
            walked = walk(tree, options)
        except (RecursionError, MemoryError) as exc:
            walked = {
                "findings": [
                    {
                        "rule": "analysis-limit",
                        "severity": HIGH,
                        "line": 0,
                        "column": 0,
                        "message": f"the program is too deeply nested to analyse ({type(exc).__name__}); "
                        "treated as a possible write",
                    }
                ],
                "writes": ["unresolved"],
                "reads": [],
                "possible_writes": True,
                "results": [None],
            }
        finally:
            sys.setrecursionlimit(limit)
        result["findings"] = walked["findings"]
        result["writes"] = walked["writes"]
        result["reads"] = walked["reads"]
        result["possible_writes"] = walked["possible_writes"]
        result["write_sites"] = walked.get("write_sites", [])
        result["assigns_results"] = bool(walked["results"])
        if error is None:
            result["findings"].extend(results_findings(walked["results"]))
        if options.get("mask"):
            result["masked"] = masked_source(code, tree, walked.get("strings"))
    elif error is None:
        # Compiles, but the tree is too deep for the Python-level walk: do not guess.
        result["findings"] = [
            {
                "rule": "analysis-limit",
                "severity": HIGH,
                "line": 0,
                "column": 0,
                "message": "the program is too deeply nested to analyse; treated as a possible write",
            }
        ]
        result["writes"] = ["unresolved"]
        result["possible_writes"] = True
        result["assigns_results"] = "results" in code
    tree = walked = None  # freed here, inside the measured time (as a bare parse frees its tree)
    t2 = time.perf_counter()
    result["timings_ms"] = {"verdict": round((t1 - t0) * 1000, 3), "walk": round((t2 - t1) * 1000, 3)}
    return result
