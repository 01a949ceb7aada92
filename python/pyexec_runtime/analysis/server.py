"""The analysis helper: JSON lines on stdin, one JSON line per request on stdout.

Request:  {"id": 1, "op": "analyze", "code": "...", "options": {...}}   (op: analyze | parse | ping)
Response: {"id": 1, "ok": true, "result": {...}} or {"id": 1, "ok": false, "error": {"type", "message"}}

Started once per Analyzer by src/analysis/python-helper.ts and kept running. It never runs the code
it analyses. `--max-memory-mb` caps its address space, so a hostile program ends in a MemoryError
answer (or, at worst, the death of this process, which the caller notices and restarts), never in a
machine out of memory.

Op `parse` (for the benchmark) is a bare `ast.parse`; with options {"compile": true} it is also
followed by `compile(tree)`, i.e. the parser plus the compiler checks the analysis verdict needs.
Answers to `analyze` are kept for recently analysed programs (same code and options: the analysis
is deterministic), so the execution stage's re-check of code the analysis stage analysed is a look-up;
such an answer says "cached": true. Options {"cache": false} bypass it.

The cyclic garbage collector is off while a request runs (the analysis makes no reference cycles:
its objects go by reference counting) and runs between requests, after the answer is written.
"""

from __future__ import annotations

import argparse
import ast
import gc
import hashlib
import json
import os
import sys
import time
from collections import OrderedDict
from typing import Any

FULL_COLLECTION_EVERY = 64


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    try:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


CACHE_ENTRIES = 128
CACHE_CODE_BYTES = 16 * 1024 * 1024


class ResultCache:
    """The last answers to `analyze`, by sha256 of the code and the options (least recently used
    first out; bounded in entries and in code size)."""

    def __init__(self, entries: int = CACHE_ENTRIES, code_bytes: int = CACHE_CODE_BYTES) -> None:
        self.entries = entries
        self.code_bytes = code_bytes
        self.size = 0
        self.items: OrderedDict[str, tuple[dict, int]] = OrderedDict()

    @staticmethod
    def key(code: str, options: dict) -> str:
        digest = hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()
        return digest + json.dumps(options, sort_keys=True, ensure_ascii=True)

    def get(self, key: str) -> dict | None:
        hit = self.items.get(key)
        if hit is None:
            return None
        self.items.move_to_end(key)
        return hit[0]

    def put(self, key: str, result: dict, size: int) -> None:
        if size > self.code_bytes:
            return
        old = self.items.pop(key, None)
        if old is not None:
            self.size -= old[1]
        self.items[key] = (result, size)
        self.size += size
        while len(self.items) > self.entries or self.size > self.code_bytes:
            _key, (_result, dropped) = self.items.popitem(last=False)
            self.size -= dropped


_cache = ResultCache()


def handle(request: dict) -> dict:
    from .analyze import FILENAME, analyze

    op = request.get("op")
    if op == "ping":
        return {"pid": os.getpid(), "python": sys.version.split()[0]}
    code = request.get("code")
    if not isinstance(code, str):
        raise TypeError("`code` must be a string")
    options = request.get("options") or {}
    if op == "parse":
        t0 = time.perf_counter()
        try:
            tree = ast.parse(code, FILENAME)
            if options.get("compile"):
                compile(tree, FILENAME, "exec", dont_inherit=True)
            ok = True
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            ok = False
        tree = None
        return {"syntax_ok": ok, "timings_ms": {"parse": round((time.perf_counter() - t0) * 1000, 3)}}
    if op == "analyze":
        use_cache = options.get("cache", True) is not False
        options = {k: v for k, v in options.items() if k != "cache"}
        if not use_cache:
            return analyze(code, options)
        t0 = time.perf_counter()
        key = _cache.key(code, options)
        hit = _cache.get(key)
        if hit is not None:
            lookup = round((time.perf_counter() - t0) * 1000, 3)
            return {**hit, "cached": True, "timings_ms": {"verdict": 0.0, "walk": lookup}}
        result = analyze(code, options)
        _cache.put(key, result, len(code) + len(result.get("masked") or ""))
        return result
    raise ValueError(f"unknown op {op!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyexec_runtime.analysis.server")
    parser.add_argument("--max-memory-mb", type=int, default=2048)
    args = parser.parse_args(argv)
    _limit_memory(args.max_memory_mb)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", newline="\n")
    sys.stdout = sys.stderr  # nothing but answers may reach the protocol stream
    from . import analyze as _analysis  # noqa: F401 - imported before the freeze below

    gc.collect()
    gc.freeze()  # what is loaded now lives as long as the process: full collections skip it
    gc.disable()
    for served, raw in enumerate(sys.stdin.buffer, 1):
        request: Any = None
        try:
            request = json.loads(raw)
            reply = {"id": request.get("id"), "ok": True, "result": handle(request)}
        except MemoryError:
            gc.collect()
            reply = {
                "id": _id(request),
                "ok": False,
                "error": {"type": "MemoryError", "message": "the analysis ran out of memory"},
            }
        except Exception as exc:  # noqa: BLE001 - every failure becomes an answer, never a dead helper
            reply = {"id": _id(request), "ok": False, "error": {"type": type(exc).__name__, "message": str(exc)[:2000]}}
        try:
            text = json.dumps(reply, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            text = json.dumps({"id": _id(request), "ok": False, "error": {"type": "EncodeError", "message": str(exc)}})
        out.write(text + "\n")
        out.flush()
        request = reply = text = None
        # Between requests, after the answer: the young generation each time, everything now and then.
        gc.collect(2 if served % FULL_COLLECTION_EVERY == 0 else 0)
    return 0


def _id(request: Any) -> Any:
    return request.get("id") if isinstance(request, dict) else None


if __name__ == "__main__":
    sys.exit(main())
