"""A zygote: a warm Python that forks fresh kernels (or local runs) in milliseconds.

    python -m pyexec_runtime.zygote --role kernel|runner

It imports the warm stack once (numpy, pandas, matplotlib with Agg, pyepics without a Channel
Access context, IPython and ipykernel with everything a kernel imports at start, pyexec_runtime),
freezes the garbage collector's view of it, checks that it runs a single thread, and then waits for
requests, one JSON line each on stdin, answering one JSON line each on stdout:

    {"op": "spawn", "argv": [...], "env": {...}, "cwd": "..."}  ->  {"ok": true, "pid": 1234}
    {"op": "ping"}                                               ->  {"ok": true, "pid": <zygote>}

A spawned child starts in its own session and process group (so a signal to the group reaches it
and everything it starts), takes the given environment whole, re-seeds every random generator,
points its stdin at /dev/null and its stdout at the zygote's stderr (stdout is the zygote's
protocol), and then runs `kernel.main(argv)` (role `kernel`: the kernel confines itself and starts
IPython) or `runner.main(argv)` (role `runner`). The zygote never runs user code, holds no thread,
socket or Channel Access context when it forks, and does not wait for its children: SIGCHLD is
ignored, so they are reaped by the kernel (the provisioner watches them through pidfds). The
zygote dies with its parent (PR_SET_PDEATHSIG, and the end of its stdin), and a kernel with its
zygote (ipykernel's parent poller, JPY_PARENT_PID): nothing outlives the server. A zygote that
crashes takes its kernels with it; their runs end as a kernel death does (read-only code runs
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
from typing import Any

WARM = ("numpy", "pandas", "matplotlib", "matplotlib.pyplot", "epics", "epics.ca", "epics.pv")
# Modules a kernel imports while it starts, found by a probe (see `_kernel_modules`); these are
# imported by name only when a probe cannot run.
KERNEL_WARM = ("IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "ipykernel.debugger", "zmq")
_SINGLE_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


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

            app = kernel.make_app({"ip": "127.0.0.1", "transport": "tcp", "key": "", "signature_scheme": "hmac-sha256"}, None)
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
    """Imports the warm stack (and, for kernels, what a kernel imports at start)."""
    for key, value in _SINGLE_THREAD_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MPLBACKEND", "Agg")
    failed = []
    for name in WARM + (KERNEL_WARM if role == "kernel" else ()):
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
    count = threads()
    if count != 1:
        raise ZygoteError(f"{count} threads run after the warm imports: forking would not be safe")
    gc.collect()
    gc.freeze()
    return {"modules": len(sys.modules), "probed": probed, "failed": failed}


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
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(2, 1)
        os.close(devnull)
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


def serve(role: str, stdin: Any = None, stdout: Any = None) -> int:
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    _die_with_parent()
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    try:
        info = warm(role)
    except ZygoteError as exc:
        stdout.write((json.dumps({"ok": False, "error": str(exc)}) + "\n").encode())
        stdout.flush()
        return 3
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the server's group is not for us
    stdout.write((json.dumps({"ok": True, "ready": True, "pid": os.getpid(), **info}) + "\n").encode())
    stdout.flush()
    for line in stdin:
        try:
            request = json.loads(line)
        except ValueError:
            reply: dict[str, Any] = {"ok": False, "error": "not JSON"}
        else:
            if request.get("op") == "spawn":
                if threads() != 1:
                    reply = {"ok": False, "error": "the zygote runs more than one thread"}
                else:
                    pid = os.fork()
                    if pid == 0:
                        _child(request, role)
                    reply = {"ok": True, "pid": pid}
            elif request.get("op") == "ping":
                reply = {"ok": True, "pid": os.getpid()}
            else:
                reply = {"ok": False, "error": f"unknown op {request.get('op')!r}"}
        stdout.write((json.dumps(reply) + "\n").encode())
        stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pyexec_runtime.zygote")
    parser.add_argument("--role", choices=("kernel", "runner"), default="kernel")
    args = parser.parse_args(argv)
    return serve(args.role)


if __name__ == "__main__":
    sys.exit(main())
