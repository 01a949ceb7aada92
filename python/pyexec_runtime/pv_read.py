"""Reads the current values of a few PVs for the approver's page (src/approval/pv-reader.ts).

    python -m pyexec_runtime.pv_read --timeout 2 NAME [NAME ...]

Prints one JSON object: {"NAME": {"ok": true, "value": ..., "text": "..."} | {"ok": false, "error": "..."}}.
It only reads (Channel Access gets); the caller runs it with the read-only mode's EPICS settings,
so it talks to the read-only endpoint (a gateway or IOC that refuses writes), never the write one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

MAX_ELEMENTS = 20


def _plain(value: object) -> object:
    """A JSON-safe rendering: arrays cut to MAX_ELEMENTS, bytes decoded, NaN/inf as text."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in list(value)[:MAX_ELEMENTS]]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("names", nargs="+")
    args = parser.parse_args(argv)
    import epics  # noqa: PLC0415 (after argument errors, which need no libca)

    names = list(dict.fromkeys(args.names))
    values = epics.caget_many(names, timeout=args.timeout, connection_timeout=args.timeout)
    texts = epics.caget_many(names, as_string=True, timeout=args.timeout, connection_timeout=0.1)
    out: dict[str, dict] = {}
    for name, value, text in zip(names, values, texts, strict=False):
        if value is None:
            out[name] = {"ok": False, "error": "no answer (not connected or timed out)"}
        else:
            out[name] = {"ok": True, "value": _plain(value), "text": _plain(text) if text is not None else None}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
