"""Local execution: runs <folder>/code.py in this process and writes execution_metadata.json.

    python -m pyexec_runtime.runner <folder> [--mode read_only|write_access] [--max-output BYTES]

The parent (pyexec's local executor) runs this in its own process group and kills the group on
timeout. The outcome is classified by exception class: a PyexecRefusal is a safety refusal, any
other exception a runtime (code) error, a missing `results` a code error.

Before anything else (one thread, no imports of the stack yet) the process confines itself as a
kernel of its mode does (confine.py): TCP connect only to the mode's Channel Access ports, no TCP
bind, files only what the stack needs, a private temporary folder and <folder>. A process that
cannot be confined exits with status 78 (EX_CONFIG) and the reason on stderr, having run nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import traceback
from typing import Any

from .context import Context


class _Bounded(io.TextIOBase):
    """A text stream that keeps at most `limit` characters and notes what it dropped. What it keeps
    is also written through to `echo` (the process's real stream) as it comes: the parent reads it
    as live output. An echo that fails is dropped; the kept text is what the metadata reports."""

    def __init__(self, limit: int, echo: Any = None) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.dropped = 0
        self.echo = echo

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        room = self.limit - self.size
        if room > 0:
            kept = s[:room]
            self.parts.append(kept)
            self.size += len(kept)
            self.dropped += len(s) - len(kept)
            if self.echo is not None and kept:
                try:
                    self.echo.write(kept)
                    self.echo.flush()
                except Exception:  # noqa: BLE001 - a closed pipe or an unencodable character
                    self.echo = None
        else:
            self.dropped += len(s)
        return len(s)

    def getvalue(self) -> str:
        text = "".join(self.parts)
        if self.dropped:
            text += f"\n[... output truncated: {self.dropped} more characters ...]\n"
        return text


def _load_json(path: str, default: Any) -> Any:
    from .errors import decode_request_json

    try:
        with open(path, encoding="utf-8") as fh:
            return decode_request_json(fh.read())
    except FileNotFoundError:
        return default


def _preload() -> None:
    """Imports the scientific stack before the guard goes in, so their own start-up (font caches,
    platform probes) is not mistaken for the code's; the guard then covers everything the code does."""
    for name in ("numpy", "pandas", "matplotlib.pyplot", "epics"):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - optional packages
            pass


EXIT_NOT_CONFINED = 78


def _confine(mode: str, folder: str, tmp: str | None = None) -> None:
    """Confines this process to `folder` and a private temporary folder: `tmp` when the fork server
    made it (and removes it once the run is reaped), else a new one removed at exit."""
    import shutil
    import tempfile

    from . import confine

    if tmp is None:
        import atexit

        tmp = tempfile.mkdtemp(prefix=f"pyexec-run-{os.getpid()}-")
        atexit.register(shutil.rmtree, tmp, True)
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp
    try:
        confine.confine_process(mode, write_dirs=[folder, tmp])
    except confine.ConfinementError as exc:
        sys.stderr.write(f"pyexec runner ({mode}): refusing to run: {exc}\n")
        sys.stderr.flush()
        shutil.rmtree(tmp, True)
        os._exit(EXIT_NOT_CONFINED)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pyexec_runtime.runner")
    parser.add_argument("folder")
    parser.add_argument("--mode")
    parser.add_argument("--max-output", type=int, default=1_000_000)
    # The fork server's (run_server.py): the run's private temporary folder, made and removed there.
    parser.add_argument("--private-tmp", help=argparse.SUPPRESS)
    return parser


# Built once (in a fork server, before the fork): building it cost a run ~3 ms.
_PARSER = _parser()


def main(argv: list[str] | None = None) -> int:
    args = _PARSER.parse_args(argv)
    args.mode = args.mode or os.environ.get("PYEXEC_EXECUTION_MODE", "read_only")
    folder = os.path.abspath(args.folder)
    os.chdir(folder)
    os.environ.setdefault("MPLBACKEND", "Agg")
    _confine(args.mode, folder, args.private_tmp)

    from . import guard, limits
    from .capture import save_figures, save_results
    from .errors import REFUSALS, PyexecRefusal, refusal_outcome

    _preload()
    mode = guard.install(args.mode)
    limits.install_from_env()

    code_path = os.path.join(folder, "code.py")
    with open(code_path, encoding="utf-8") as fh:
        code = fh.read()
    from .errors import RequestInputError

    try:
        context = Context(_load_json(os.path.join(folder, "context.json"), {}) or {})
        payload = _load_json(os.path.join(folder, "approval_payload.json"), None)
    except RequestInputError as exc:
        # The request's own error (reported as such), not the code's and not the runner's.
        with open(os.path.join(folder, "execution_metadata.json"), "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "execution_mode": mode,
                    "success": False,
                    "error_kind": "input",
                    "error_type": exc.error_type,
                    "error_name": type(exc).__name__,
                    "error": str(exc),
                },
                fh,
            )
        return 0
    namespace: dict[str, Any] = {
        "__name__": "__main__",
        "__file__": code_path,
        "context": context,
        "approval_payload": payload,
    }
    from .confine import current

    meta: dict[str, Any] = {
        "execution_mode": mode,
        "start_time": time.time(),
        "success": False,
        "confinement": current() or {"method": "none"},
    }
    real_out, real_err = sys.stdout, sys.stderr
    for stream in (real_out, real_err):
        try:
            stream.reconfigure(errors="backslashreplace")
        except Exception:  # noqa: BLE001 - not a TextIOWrapper
            pass
    out, err = _Bounded(args.max_output, echo=real_out), _Bounded(args.max_output, echo=real_err)
    sys.stdout, sys.stderr = out, err
    try:
        compiled = compile(code, code_path, "exec")
        exec(compiled, namespace)  # noqa: S102 - running the analysed (and approved) code is the job
        meta["success"] = True
    except PyexecRefusal as exc:
        meta.update(error_kind="refused", error_type=exc.error_type, error_name=type(exc).__name__, error=str(exc))
        meta["traceback"] = traceback.format_exc()
    except SyntaxError as exc:
        meta.update(error_kind="code", error_type="syntax", error_name=type(exc).__name__, error=str(exc))
        meta["traceback"] = traceback.format_exc()
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are code errors too
        meta.update(error_kind="code", error_type="runtime", error_name=type(exc).__name__, error=str(exc))
        meta["traceback"] = "".join(traceback.format_exception(exc))
    finally:
        sys.stdout, sys.stderr = real_out, real_err
    meta["figures"] = save_figures(folder)
    if meta["success"]:
        meta.update(save_results(folder, namespace))
    meta.update(refusal_outcome())
    meta["refusals"] = REFUSALS
    meta["limits_skipped"] = limits.SKIPPED
    meta["stdout"] = out.getvalue()
    meta["stderr"] = err.getvalue()
    meta["end_time"] = time.time()
    with open(os.path.join(folder, "execution_metadata.json"), "w", encoding="utf-8") as fh:
        json.dump(meta, fh, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
