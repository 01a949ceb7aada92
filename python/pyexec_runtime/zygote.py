"""A zygote: a warm Python that forks fresh kernels in milliseconds.

    python -m pyexec_runtime.zygote --role kernel

It imports the warm stack once (numpy, pandas, matplotlib with Agg, pyepics without a Channel
Access context, IPython and ipykernel with everything a kernel imports at start, pyexec_runtime),
freezes the garbage collector's view of it, checks that it runs a single thread, and then waits for
requests, one JSON line each on stdin, answering one JSON line each on stdout:

    {"op": "spawn", "argv": [...], "env": {...}, "cwd": "..."}  ->  {"ok": true, "pid": 1234}
    {"op": "ping"}                                               ->  {"ok": true, "pid": <zygote>}

The local method's fork server (run_server.py) is built from the same parts (`warm("runner")`,
`_child`) and adds the relay of each run's output and exit.

A spawned child starts in its own session and process group (so a signal to the group reaches it
and everything it starts), takes the given environment whole, re-seeds every random generator,
points its stdin at /dev/null and its stdout at the zygote's stderr (stdout is the zygote's
protocol), and then runs `kernel.main(argv)` (role `kernel`: the kernel confines itself and starts
IPython) or `runner.main(argv)` (role `runner`, run_server.py). The zygote never runs user code,
holds no thread, socket or Channel Access context when it forks, and does not wait for its
children: SIGCHLD is ignored, so they are reaped by the kernel (the provisioner watches them
through pidfds). The zygote dies with its parent (PR_SET_PDEATHSIG, and the end of its stdin),
and a kernel with its zygote (ipykernel's parent poller, JPY_PARENT_PID): nothing outlives the
server. A zygote that crashes takes its kernels with it; their runs end as a kernel death does (read-only code runs
again on a fresh kernel, write-capable code ends needs_review), and the next launch starts a new
zygote.

Fork safety: OpenBLAS and OpenMP pools are limited to one thread before numpy is imported (a fork
with a live native thread can deadlock the child); the start-up fails, and the caller falls back to
starting processes the ordinary way, if the process has more than one thread after the imports.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

WARM = (
    "numpy", "pandas", "matplotlib", "matplotlib.pyplot", "epics", "epics.ca", "epics.pv",
    # What guard.py patches (caproto's servers come with its asyncio client: ~0.5 s of imports).
    "epics.motor", "epics.device", "caproto.sync.client", "caproto.threading.client", "caproto.asyncio.client",
    "caproto.threading.pyepics_compat",
)  # fmt: skip
# Modules a kernel imports while it starts, found by a probe (see `_kernel_modules`); these are
# imported by name only when a probe cannot run.
KERNEL_WARM = (
    "IPython",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "zmq",
)
# What runner.main imports that WARM does not (run_server.py): without these each run imported (and,
# with PYTHONDONTWRITEBYTECODE, compiled) them again, ~13 ms of CPU a run.
RUNNER_WARM = (
    "argparse", "atexit", "shutil", "tempfile", "traceback", "encodings.ascii",
    "pyexec_runtime.confine", "pyexec_runtime.landlock", "pyexec_runtime.guard", "pyexec_runtime.limits",
    "pyexec_runtime.capture", "pyexec_runtime.errors", "pyexec_runtime.serialize", "pyexec_runtime.runner",
)  # fmt: skip
_SINGLE_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


# File descriptors of the zygote's own (the SIGCHLD wake-up pipe): closed in a child.
_ZYGOTE_FDS: list[int] = []


class ZygoteError(RuntimeError):
    """The zygote cannot fork safely (a thread runs after the imports)."""


def threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _kernel_modules() -> list[str]:
    """The modules an initialised kernel has imported: a probe child initialises one (ports of its
    own choosing, nothing written, no confinement, no user code) and reports `sys.modules`."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            from . import kernel

            app = kernel.make_app(
                {"ip": "127.0.0.1", "transport": "tcp", "key": "", "signature_scheme": "hmac-sha256"}, None
            )
            app.initialize([])
            os.write(write, json.dumps(sorted(sys.modules)).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks) or b"[]")
    except ValueError:
        return []


def warm(role: str) -> dict[str, Any]:
    """Imports the warm stack and what the role's child imports at start (a kernel; a run)."""
    for key, value in _SINGLE_THREAD_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MPLBACKEND", "Agg")
    failed = []
    for name in WARM + (KERNEL_WARM if role == "kernel" else RUNNER_WARM):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional packages
            failed.append(name)
    importlib.import_module("pyexec_runtime.kernel_session" if role == "kernel" else "pyexec_runtime.runner")
    probed = 0
    if role == "kernel":
        for name in _kernel_modules():
            if name in sys.modules or name == "__main__":
                continue
            try:
                importlib.import_module(name)
                probed += 1
            except Exception:  # noqa: BLE001 - private modules that cannot be imported by name
                pass
    _preload_libca()
    if role == "kernel":
        from . import kernel

        kernel.app_class()
    else:
        from . import runner

        # A parse fills the regular expression cache argparse uses (a run's parse then compiles none).
        runner._PARSER.parse_args(["/", "--mode", "read_only", "--private-tmp", "/"])
    count = threads()
    if count != 1:
        raise ZygoteError(f"{count} threads run after the warm imports: forking would not be safe")
    gc.collect()
    gc.freeze()
    return {"modules": len(sys.modules), "probed": probed, "failed": failed}


def _preload_libca() -> None:
    """pyepics looks for libca on every start (`find_libca`, ~20 ms of searching): found and loaded
    once here, before the fork. No Channel Access context is created (that starts threads): each
    child creates its own when it first needs one. A child whose PYEPICS_LIBCA differs searches."""
    try:
        import ctypes

        import epics.ca
    except Exception:  # noqa: BLE001 - pyepics is optional
        return
    search = epics.ca.find_libca
    try:
        found = search()
        ctypes.cdll.LoadLibrary(found)
    except Exception:  # noqa: BLE001 - no libca here: the child finds out as it would have
        return
    given = os.environ.get("PYEPICS_LIBCA")

    def find_libca() -> Any:
        return found if os.environ.get("PYEPICS_LIBCA") == given else search()

    epics.ca.find_libca = find_libca


def _reseed() -> None:
    import random

    random.seed()
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed()


def _child(request: dict[str, Any], role: str) -> None:
    """In the forked child: a process of its own, then the kernel or the runner. Never returns."""
    code = 1
    try:
        os.setsid()
        for fd in _ZYGOTE_FDS:
            try:
                os.close(fd)
            except OSError:
                pass
        signal.set_wakeup_fd(-1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        # A run's stdout and stderr are pipes run_server.py relays to its caller (the caller's live
        # output); a kernel's stdout goes to the zygote's stderr (stdout is the protocol).
        pipes = request.get("_pipes")
        if pipes:
            os.dup2(pipes[0], 1)
            os.dup2(pipes[1], 2)
            for fd in pipes:
                os.close(fd)
        else:
            os.dup2(2, 1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        gc.unfreeze()
        zygote = os.getppid()
        os.environ.clear()
        os.environ.update(request.get("env") or {})
        # A kernel ends when its zygote does (ipykernel's parent poller), and the zygote ends with
        # the server: no kernel outlives the server that started it.
        os.environ["JPY_PARENT_PID"] = str(zygote)
        if request.get("cwd"):
            os.chdir(request["cwd"])
        _reseed()
        argv = list(request.get("argv") or [])
        if role == "kernel":
            from . import kernel

            kernel.main(argv)
            code = 0
        else:
            from . import runner

            code = runner.main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - the child reports and ends, whatever happened
        try:
            sys.stderr.write(f"pyexec zygote child: {type(exc).__name__}: {exc}\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)


def _die_with_parent() -> None:
    """SIGKILL when the process that started us (the Jupyter server, the executor) goes away."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the end of stdin still ends the zygote
        pass


def start(role: str, stdout: Any) -> tuple[Callable[[dict[str, Any]], None], dict[str, Any]] | None:
    """The start of a fork server (this zygote; run_server.py): dies with its parent, warms the
    role's stack and ignores Ctrl-C to its caller's group. Returns how to send a reply line and what
    was warmed (for the ready line, sent once the caller is set up); None, once it has said why,
    when it cannot fork safely."""

    def send(message: dict[str, Any]) -> None:
        stdout.write((json.dumps(message) + "\n").encode())
        stdout.flush()

    _die_with_parent()
    try:
        info = warm(role)
    except ZygoteError as exc:
        send({"ok": False, "error": str(exc)})
        return None
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return send, info


def requests(pending: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """The requests of the complete lines in `pending` (one with "error" for a line that is not a
    JSON object; blank lines skipped), and what is left of the next line."""
    *lines, rest = pending.split(b"\n")
    return [_parse(line) for line in lines if line.strip()], rest


def serve(stdin: Any = None, stdout: Any = None) -> int:
    """Forks kernels on request (role `kernel`) until stdin ends."""
    stdin = stdin or sys.stdin.buffer
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    started = start("kernel", stdout or sys.stdout.buffer)
    if started is None:
        return 3
    send, info = started
    # Kernels are reaped by the kernel's parent's provisioner (pidfds): no status wanted here.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    stdin_fd = stdin.fileno()
    send({"ok": True, "ready": True, "pid": os.getpid(), **info})
    pending = b""
    while chunk := os.read(stdin_fd, 1 << 16):
        received, pending = requests(pending + chunk)
        for request in received:
            send({"ok": False, "error": request["error"]} if "error" in request else handle(request))
    return 0


def _reap() -> list[tuple[int, int]]:
    """Every ended child: (pid, exit code; minus the signal number when a signal ended it)."""
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        ended.append((pid, os.waitstatus_to_exitcode(status)))
    return ended


def _parse(line: bytes) -> dict[str, Any]:
    try:
        request = json.loads(line)
    except ValueError:
        return {"error": "not JSON"}
    if not isinstance(request, dict):
        return {"error": "not a JSON object"}
    return request


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """A request's reply: a kernel forked (`spawn`), `ping`, or an unknown op."""
    if request.get("op") == "spawn":
        if threads() != 1:
            return {"ok": False, "error": "the zygote runs more than one thread"}
        pid = os.fork()
        if pid == 0:
            _child(request, "kernel")
        return {"ok": True, "pid": pid}
    if request.get("op") == "ping":
        return {"ok": True, "pid": os.getpid()}
    return {"ok": False, "error": f"unknown op {request.get('op')!r}"}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pyexec_runtime.zygote")
    parser.add_argument("--role", choices=("kernel",), default="kernel")  # runs: run_server.py
    parser.parse_args(argv)
    return serve()


if __name__ == "__main__":
    sys.exit(main())
