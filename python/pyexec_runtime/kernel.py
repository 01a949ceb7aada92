"""The kernel process of pyexec's kernelspecs:

    python -m pyexec_runtime.kernel -f {connection_file}

(started so by the ordinary launcher, or forked from a warm zygote by the kernelspec's provisioner,
provisioner.py, which calls `main(argv)` in the child). It

1. reads its connection file (the only file of the Jupyter runtime folder it ever reads);
2. makes a private temporary folder (TMPDIR, IPYTHONDIR) under $PYEXEC_KERNEL_TMP (or the system's);
3. confines itself (confine.py) while it has a single thread: TCP bind only to its own ZMQ ports,
   TCP connect only to its mode's Channel Access ports, files only what the stack needs, its private
   folder and the execution root ($PYEXEC_EXECUTION_ROOT, narrowed to one request's folder when a
   run begins). A kernel that cannot be confined exits with the reason and runs nothing
   (unless PYEXEC_CONFINEMENT=deployment);
4. starts an IPython kernel configured for headless use (no colours in tracebacks, no history
   database), which runs `kernel_session.startup()` before it answers any request:
   the scientific stack is imported (already, in a forked kernel), and in a read-only kernel the
   guard is installed.

The mode comes from the kernelspec's environment (PYEXEC_EXECUTION_MODE; read_only when unset).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import shutil
import sys
import tempfile
from typing import Any

STARTUP = "import pyexec_runtime.kernel_session as _pyexec_s; _pyexec_s.startup(); del _pyexec_s"
_UNRESOLVED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
_PORT_KEYS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def _connection_file(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "-f" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(("--f=", "--IPKernelApp.connection_file=")):
            return arg.split("=", 1)[1]
    return None


def private_tmp() -> str:
    """A folder of this process's own (TMPDIR, tempfile, IPython's profile), removed at exit."""
    parent = os.environ.get("PYEXEC_KERNEL_TMP") or None
    if parent:
        os.makedirs(parent, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=f"pyexec-kernel-{os.getpid()}-", dir=parent)
    os.environ["TMPDIR"] = folder
    os.environ["IPYTHONDIR"] = os.path.join(folder, "ipython")
    tempfile.tempdir = folder
    atexit.register(shutil.rmtree, folder, True)
    return folder


def confine_kernel(info: dict[str, Any], mode: str, tmp: str) -> dict[str, Any]:  # noqa: RET503 - exits
    """Confines this process for `mode`; exits (status 3, reason on stderr) when it cannot."""
    from . import confine

    root = os.environ.get("PYEXEC_EXECUTION_ROOT") or ""
    write_dirs = [tmp] + ([root] if root and os.path.isdir(root) else [])
    ports = [int(info[k]) for k in _PORT_KEYS if info.get(k)]
    try:
        return confine.confine_process(mode, bind_ports=ports, write_dirs=write_dirs)
    except confine.ConfinementError as exc:
        sys.stderr.write(f"pyexec kernel ({mode}): refusing to start: {exc}\n")
        sys.stderr.flush()
        os._exit(3)


_CONNECTION_ARGS = re.compile(r"^--(f|IPKernelApp\.connection_file)=")


def _only_connection_file(argv: list[str]) -> bool:
    """Whether argv says nothing but where the connection file is (what pyexec's kernelspecs pass)."""
    return (len(argv) == 2 and argv[0] == "-f") or (len(argv) == 1 and bool(_CONNECTION_ARGS.match(argv[0])))


@functools.cache
def app_class() -> Any:
    """pyexec's IPKernelApp: takes its connection info as given (read before confinement: the file
    is out of reach afterwards) and writes no connection file. Made once (a zygote makes it before
    it forks: a class of traitlets costs milliseconds to set up)."""
    from ipykernel.kernelapp import IPKernelApp

    class PyexecKernelApp(IPKernelApp):
        pyexec_info: dict[str, Any] = {}  # noqa: RUF012 - set on the instance by make_app
        pyexec_path: str | None = None

        def init_connection_file(self) -> None:
            if self.pyexec_path:
                self.connection_file = self.pyexec_path
            self.load_connection_info(self.pyexec_info)

        def write_connection_file(self, **kwargs: Any) -> None:
            pass

        def parse_command_line(self, argv: Any = None) -> None:
            # The connection file is handed over by make_app: building traitlets' parser of every
            # configurable class for `-f <file>` alone costs ~35 ms of a kernel's start.
            args = [str(a) for a in (argv or [])]
            if _only_connection_file(args):
                self.argv = args
                self.extra_args = []
                return
            super().parse_command_line(argv)

    return PyexecKernelApp


def make_app(info: dict[str, Any], path: str | None) -> Any:
    """An IPKernelApp for headless use that takes its connection info from `info` and writes no
    connection file (see app_class)."""
    from traitlets.config import Config

    config = Config()
    config.InteractiveShell.colors = "nocolor"
    config.HistoryManager.enabled = False
    config.IPKernelApp.exec_lines = [STARTUP]
    config.IPKernelApp.exec_PYTHONSTARTUP = False
    # The trait's default reads JPY_PARENT_PID when ipykernel is imported: in a zygote, long before
    # this kernel's environment exists. The parent poller ends the kernel when its parent goes.
    config.IPKernelApp.parent_handle = int(os.environ.get("JPY_PARENT_PID") or 0)
    app = app_class().instance(config=config)
    app.pyexec_info = info
    app.pyexec_path = path
    return app


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    # A kernelspec env value like "${EPICS_CA_ADDR_LIST}" that the server could not fill in means
    # "inherit": drop it rather than hand libca a literal template.
    for key, value in list(os.environ.items()):
        if _UNRESOLVED.match(value):
            del os.environ[key]
    os.environ.setdefault("MPLBACKEND", "Agg")
    mode = os.environ.get("PYEXEC_EXECUTION_MODE") or "read_only"
    if mode not in ("read_only", "write_access"):
        mode = "read_only"
    path = _connection_file(argv)
    if not path:
        sys.stderr.write("pyexec kernel: -f <connection file> is required\n")
        sys.exit(2)
    with open(path, encoding="utf-8") as fh:
        info = json.load(fh)
    tmp = private_tmp()
    confine_kernel(info, mode, tmp)
    app = make_app(info, path)
    app.initialize(argv)
    app.start()


if __name__ == "__main__":
    main()
