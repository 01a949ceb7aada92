"""Installs pyexec's kernelspecs (one per execution mode):

    python -m pyexec_runtime.kernelspecs install --prefix <venv or folder> [--modes-json JSON] [--python P]
        [--only read_only|write_access ...]

writes <prefix>/share/jupyter/kernels/<kernel_name>/kernel.json for `read_only` and `write_access`
(or only the modes named by `--only`: a Jupyter server of one mode has one kernelspec).
`--modes-json` (or $PYEXEC_KERNEL_MODES_JSON) is `{"read_only": {"kernel_name": ..., "environment":
{...}}, "write_access": {...}}` (config `execution.modes.*`); without it the names are
python3-epics-readonly / python3-epics-write and the EPICS address list and server port are
inherited from the Jupyter server's environment (`${VAR}` left unfilled is dropped by the kernel).

Used by scripts/setup.sh, by the Jupyter servers pyexec spawns (a private prefix per pool, with the
mode environment from the config) and by the EPICS kernel image (deploy/kernel/Dockerfile).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEFAULT_MODES: dict[str, dict[str, Any]] = {
    "read_only": {"kernel_name": "python3-epics-readonly", "environment": {}},
    "write_access": {"kernel_name": "python3-epics-write", "environment": {}},
}
DISPLAY = {"read_only": "Python 3 (EPICS, read-only)", "write_access": "Python 3 (EPICS, write access)"}


def kernel_json(mode: str, environment: dict[str, str], python: str, provisioner: bool = True) -> dict[str, Any]:
    env = {
        # Inherited from the server unless the mode sets them ("${VAR}": the server's value).
        "EPICS_CA_ADDR_LIST": "${EPICS_CA_ADDR_LIST}",
        "EPICS_CA_SERVER_PORT": "${EPICS_CA_SERVER_PORT}",
        "EPICS_CA_REPEATER_PORT": "${EPICS_CA_REPEATER_PORT}",
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        # Confinement (confine.py): inherited from the server unless the mode sets them.
        "PYEXEC_CONFINEMENT": "${PYEXEC_CONFINEMENT}",
        "PYEXEC_EXECUTION_ROOT": "${PYEXEC_EXECUTION_ROOT}",
        "PYEXEC_KERNEL_TMP": "${PYEXEC_KERNEL_TMP}",
        "PYEXEC_CONNECT_PORTS": "${PYEXEC_CONNECT_PORTS}",
        **{k: str(v) for k, v in environment.items()},
        "PYEXEC_EXECUTION_MODE": mode,
        "PYTHONPATH": PACKAGE_PARENT,
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
    }
    return {
        "argv": [python, "-m", "pyexec_runtime.kernel", "-f", "{connection_file}"],
        "display_name": DISPLAY[mode],
        "language": "python",
        "interrupt_mode": "signal",
        "env": env,
        # Kernels are forked from a warm zygote (provisioner.py; registered by python/pyproject.toml),
        # unless `--no-provisioner` asks for jupyter_client's ordinary launcher.
        "metadata": {
            "pyexec": {"mode": mode},
            "debugger": False,
            **(
                {"kernel_provisioner": {"provisioner_name": "pyexec-zygote-provisioner", "config": {}}}
                if provisioner
                else {}
            ),
        },
    }


def install(
    prefix: str,
    modes: dict[str, dict[str, Any]] | None = None,
    python: str | None = None,
    only: list[str] | None = None,
    provisioner: bool = True,
) -> list[str]:
    modes = {**DEFAULT_MODES, **(modes or {})}
    written = []
    for mode in only or ("read_only", "write_access"):
        spec = modes[mode]
        name = spec.get("kernel_name") or DEFAULT_MODES[mode]["kernel_name"]
        folder = os.path.join(prefix, "share", "jupyter", "kernels", name)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "kernel.json")
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(
                kernel_json(mode, spec.get("environment") or {}, python or sys.executable, provisioner), fh, indent=2
            )
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyexec_runtime.kernelspecs")
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install")
    inst.add_argument("--prefix", default=sys.prefix)
    inst.add_argument("--modes-json", default=os.environ.get("PYEXEC_KERNEL_MODES_JSON"))
    inst.add_argument("--python", default=None)
    inst.add_argument("--only", action="append", choices=("read_only", "write_access"), default=None)
    inst.add_argument("--no-provisioner", action="store_true", help="start kernels the ordinary way (no zygote)")
    args = parser.parse_args(argv)
    modes = json.loads(args.modes_json) if args.modes_json else None
    for path in install(args.prefix, modes, args.python, args.only, not args.no_provisioner):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
