"""The kernel process of pyexec's kernelspecs:

    python -m pyexec_runtime.kernel -f {connection_file}

An IPython kernel configured for headless use (no colours in tracebacks, no history database), that
runs `kernel_session.startup()` before it answers any request: the scientific stack is imported
(a warm kernel), and in a read-only kernel the guard is installed before any user code runs.
The mode comes from the kernelspec's environment (PYEXEC_EXECUTION_MODE; read_only when unset).
"""
from __future__ import annotations

import os
import re
import sys

STARTUP = "import pyexec_runtime.kernel_session as _pyexec_s; _pyexec_s.startup(); del _pyexec_s"
_UNRESOLVED = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


def main() -> None:
    # A kernelspec env value like "${EPICS_CA_ADDR_LIST}" that the server could not fill in means
    # "inherit": drop it rather than hand libca a literal template.
    for key, value in list(os.environ.items()):
        if _UNRESOLVED.match(value):
            del os.environ[key]
    os.environ.setdefault("MPLBACKEND", "Agg")
    from ipykernel.kernelapp import IPKernelApp
    from traitlets.config import Config

    config = Config()
    config.InteractiveShell.colors = "nocolor"
    config.HistoryManager.enabled = False
    config.IPKernelApp.exec_lines = [STARTUP]
    config.IPKernelApp.exec_PYTHONSTARTUP = False
    IPKernelApp.launch_instance(argv=sys.argv[1:], config=config)


if __name__ == "__main__":
    main()
