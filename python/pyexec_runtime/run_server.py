"""The local method's fork server: a warm Python that forks each run (src/executors/fork-server.ts).

    python -m pyexec_runtime.run_server

It warms (zygote.warm, role `runner`) what zygote.py warms for every role (numpy, pandas,
matplotlib with Agg, pyepics without a Channel Access context, caproto's clients) and, once, what
every run did again before: the runner's own modules (zygote.RUNNER_WARM: confinement, guard,
limits, capture: with PYTHONDONTWRITEBYTECODE they were compiled from source in each run), its
argument parser, and pyepics' libca (pyepics finds it by running `file` on the
interpreter; zygote._preload_libca finds and loads it once, no context created). The process must
still run a single thread after that, or it refuses to serve (zygote.warm checks), and the caller
starts a new Python per run instead.

The protocol, one JSON line each way:

    {"op": "spawn", "argv": [...], "env": {...}, "cwd": "..."}  ->  {"ok": true, "pid": 1234}
    {"op": "ping"}                                               ->  {"ok": true, "pid": <server>}
    {"op": "output", "pid": 1234, "stream": "stdout", "text": "..."}   (as the run writes it)
    {"op": "exit", "pid": 1234, "code": 0}     (once its output is complete and it is reaped;
                                                minus the signal number when a signal ended it)

Each run is a fresh fork (zygote._child: its own session and process group, the given environment
whole, re-seeded random generators) that runs `runner.main(argv)`, which confines itself to its
request's folder and a private temporary folder before it reads the code. The server makes that
temporary folder before the fork (in the run's TMPDIR) and removes it once the run is reaped, also
when the run was killed (atexit handlers do not run in a forked child that ends with os._exit, nor
in one killed by a signal). Nothing of one run reaches the next: each is forked from the server's
state, which never runs user code.
"""

from __future__ import annotations

import codecs
import os
import selectors
import shutil
import signal
import sys
import tempfile
from typing import Any

from . import zygote


def serve(stdin: Any = None, stdout: Any = None) -> int:
    stdin = stdin or sys.stdin.buffer
    # The stack, the runner's modules (zygote.RUNNER_WARM) and pyepics' libca, once; a single
    # thread checked; the gc frozen.
    started = zygote.start("runner", stdout or sys.stdout.buffer)
    if started is None:
        return 3
    send, info = started
    stdin_fd = stdin.fileno()
    selector = selectors.DefaultSelector()
    selector.register(stdin_fd, selectors.EVENT_READ, "request")
    # The caller wants each run's exit status. The SIGCHLD handler only wakes the loop
    # (set_wakeup_fd), so replies and events never interleave.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector.register(wake_r, selectors.EVENT_READ, "child")
    zygote._ZYGOTE_FDS.extend((wake_r, wake_w))

    # Output pipes: read end -> (pid, stream, decoder). A run's exit is sent once both pipes are at
    # their end and the process is reaped, so all of its output comes before it.
    streams: dict[int, tuple[int, str, Any]] = {}
    runs: dict[int, dict[str, Any]] = {}

    def maybe_ended(pid: int) -> None:
        run = runs.get(pid)
        if run is not None and run["open"] == 0 and run["code"] is not None:
            del runs[pid]
            shutil.rmtree(run["tmp"], ignore_errors=True)
            send({"op": "exit", "pid": pid, "code": run["code"]})

    def spawn(request: dict[str, Any]) -> dict[str, Any]:
        if zygote.threads() != 1:
            return {"ok": False, "error": "the fork server runs more than one thread"}
        env = dict(request.get("env") or {})
        try:
            tmp = tempfile.mkdtemp(prefix="pyexec-run-", dir=env.get("TMPDIR") or None)
        except OSError as exc:
            return {"ok": False, "error": f"cannot make the run's temporary folder: {exc}"}
        argv = [*(request.get("argv") or []), "--private-tmp", tmp]
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        zygote._ZYGOTE_FDS.extend((out_r, err_r))
        pid = os.fork()
        if pid == 0:
            zygote._child({**request, "env": env, "argv": argv, "_pipes": [out_w, err_w]}, "runner")
        os.close(out_w)
        os.close(err_w)
        runs[pid] = {"open": 2, "code": None, "tmp": tmp}
        for fd, name in ((out_r, "stdout"), (err_r, "stderr")):
            streams[fd] = (pid, name, codecs.getincrementaldecoder("utf-8")(errors="replace"))
            selector.register(fd, selectors.EVENT_READ, "output")
        return {"ok": True, "pid": pid}

    send({"ok": True, "ready": True, "pid": os.getpid(), **info})
    pending = b""
    while True:
        for key, _ in selector.select():
            if key.data == "output":
                pid, name, decoder = streams[key.fd]
                try:
                    data = os.read(key.fd, 1 << 16)
                except OSError:
                    data = b""
                text = decoder.decode(data, final=not data)
                if text:
                    send({"op": "output", "pid": pid, "stream": name, "text": text})
                if not data:
                    selector.unregister(key.fd)
                    os.close(key.fd)
                    del streams[key.fd]
                    zygote._ZYGOTE_FDS.remove(key.fd)
                    runs[pid]["open"] -= 1
                    maybe_ended(pid)
                continue
            if key.data == "child":
                try:
                    while os.read(key.fd, 512):
                        pass
                except BlockingIOError:
                    pass
                for pid, code in zygote._reap():
                    if pid in runs:
                        runs[pid]["code"] = code
                        maybe_ended(pid)
                continue
            chunk = os.read(stdin_fd, 1 << 16)
            if not chunk:
                for run in runs.values():
                    shutil.rmtree(run["tmp"], ignore_errors=True)
                return 0
            received, pending = zygote.requests(pending + chunk)
            for request in received:
                if "error" in request:
                    send({"ok": False, "error": request["error"]})
                elif request.get("op") == "spawn":
                    send(spawn(request))
                else:
                    send(zygote.handle(request))  # ping, or an unknown op


if __name__ == "__main__":
    sys.exit(serve())
