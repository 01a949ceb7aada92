"""Run-time enforcement of read-only executions (defence in depth behind the static analysis).

`install(mode)` replaces every EPICS write entry point and every process-spawning entry point with a
function that raises WriteRefused, so aliases (`from epics import caput as w`), attribute chains and
`getattr` all reach the refusal: they resolve to the same patched objects.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Callable

from .errors import WriteRefused, record_refusal

_installed_mode: str | None = None


def _refuser(what: str) -> Callable[..., Any]:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise record_refusal(WriteRefused(f"{what} refused: this execution is read-only (EPICS writes blocked)"))

    refuse.__name__ = "refused_" + what.replace(".", "_").replace("(", "").replace(")", "")
    return refuse


def _patch(module_name: str, attr: str, what: str) -> None:
    try:
        module = importlib.import_module(module_name)
    except Exception:  # noqa: BLE001 - absent library: nothing to guard
        return
    if hasattr(module, attr):
        setattr(module, attr, _refuser(what))


def _guard_epics() -> None:
    try:
        import epics  # noqa: F401
        import epics.ca
        import epics.pv
    except Exception:  # noqa: BLE001
        return
    for mod, attr in [("epics", "caput"), ("epics", "caput_many"), ("epics.ca", "put"), ("epics.ca", "put_many")]:
        _patch(mod, attr, f"{mod}.{attr}")
    import epics.pv as pvmod

    refuse_put = _refuser("PV.put")
    pvmod.PV.put = lambda self, *a, **k: refuse_put(*a, **k)  # type: ignore[method-assign]
    original_value = pvmod.PV.value

    def _set_value(self: Any, val: Any) -> None:
        refuse_put(val)

    pvmod.PV.value = property(original_value.fget, _set_value, original_value.fdel, original_value.__doc__)
    try:
        import epics.motor

        for name in ("move", "put", "set_position", "tweak", "set_field"):
            if hasattr(epics.motor.Motor, name):
                setattr(epics.motor.Motor, name, _refuser(f"Motor.{name}"))
    except Exception:  # noqa: BLE001
        pass
    try:
        import epics.device

        for name in ("put", "save_state", "restore_state"):
            if hasattr(epics.device.Device, name):
                setattr(epics.device.Device, name, _refuser(f"Device.{name}"))
    except Exception:  # noqa: BLE001
        pass


def _guard_processes() -> None:
    import subprocess

    for name in ("run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"):
        setattr(subprocess, name, _refuser(f"subprocess.{name}"))
    for name in (
        "system", "popen", "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe",
        "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "posix_spawn",
        "posix_spawnp",
    ):
        if hasattr(os, name):
            setattr(os, name, _refuser(f"os.{name}"))
    try:
        import posix

        for name in ("system", "posix_spawn", "posix_spawnp", "execv", "execve"):
            if hasattr(posix, name):
                setattr(posix, name, _refuser(f"posix.{name}"))
    except ImportError:
        pass
    try:
        import ctypes

        refuse = _refuser("ctypes")
        for name in ("CDLL", "PyDLL", "LibraryLoader"):
            setattr(ctypes, name, refuse)

        class _RefusingLoader:
            def __getattr__(self, _name: str) -> Any:
                return refuse()

            def LoadLibrary(self, *_a: Any, **_k: Any) -> Any:  # noqa: N802
                return refuse()

        ctypes.cdll = _RefusingLoader()  # type: ignore[assignment]
        ctypes.pydll = _RefusingLoader()  # type: ignore[assignment]
    except ImportError:
        pass


def install(mode: str | None = None) -> str:
    """Install the guard for `mode` (default: $PYEXEC_EXECUTION_MODE, and read_only when unset: fail closed)."""
    global _installed_mode
    mode = mode or os.environ.get("PYEXEC_EXECUTION_MODE") or "read_only"
    if mode not in ("read_only", "write_access"):
        mode = "read_only"
    if mode == "read_only":
        _guard_epics()
        _guard_processes()
    _installed_mode = mode
    return mode
