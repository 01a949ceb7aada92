"""The analysis helper: JSON lines on stdin, one JSON line per request on stdout.

Request:  {"id": 1, "op": "analyze", "code": "...", "options": {...}}   (op: analyze | parse | ping)
Response: {"id": 1, "ok": true, "result": {...}} or {"id": 1, "ok": false, "error": {"type", "message"}}

Started once per Analyzer by src/analysis/python-helper.ts and kept running. It never runs the code
it analyses. `--max-memory-mb` caps its address space, so a hostile program ends in a MemoryError
answer (or, at worst, the death of this process, which the caller notices and restarts), never in a
machine out of memory.
"""
from __future__ import annotations

import argparse
import ast
import gc
import json
import os
import sys
import time
from typing import Any


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    try:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass


def handle(request: dict) -> dict:
    from .analyze import FILENAME, analyze

    op = request.get("op")
    if op == "ping":
        return {"pid": os.getpid(), "python": sys.version.split()[0]}
    code = request.get("code")
    if not isinstance(code, str):
        raise TypeError("`code` must be a string")
    if op == "parse":
        t0 = time.perf_counter()
        try:
            ast.parse(code, FILENAME)
            ok = True
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            ok = False
        return {"syntax_ok": ok, "timings_ms": {"parse": round((time.perf_counter() - t0) * 1000, 3)}}
    if op == "analyze":
        return analyze(code, request.get("options") or {})
    raise ValueError(f"unknown op {op!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyexec_runtime.analysis.server")
    parser.add_argument("--max-memory-mb", type=int, default=2048)
    args = parser.parse_args(argv)
    _limit_memory(args.max_memory_mb)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", newline="\n")
    sys.stdout = sys.stderr  # nothing but answers may reach the protocol stream
    for raw in sys.stdin.buffer:
        request: Any = None
        try:
            request = json.loads(raw)
            reply = {"id": request.get("id"), "ok": True, "result": handle(request)}
        except MemoryError:
            gc.collect()
            reply = {"id": _id(request), "ok": False, "error": {"type": "MemoryError",
                                                                   "message": "the analysis ran out of memory"}}
        except Exception as exc:  # noqa: BLE001 - every failure becomes an answer, never a dead helper
            reply = {"id": _id(request), "ok": False, "error": {"type": type(exc).__name__, "message": str(exc)[:2000]}}
        try:
            text = json.dumps(reply, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            text = json.dumps({"id": _id(request), "ok": False, "error": {"type": "EncodeError", "message": str(exc)}})
        out.write(text + "\n")
        out.flush()
        request = reply = None
    return 0


def _id(request: Any) -> Any:
    return request.get("id") if isinstance(request, dict) else None


if __name__ == "__main__":
    sys.exit(main())
