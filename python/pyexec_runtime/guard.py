"""Run-time enforcement of read-only executions (defence in depth behind the static analysis).

`install(mode)` replaces every EPICS write entry point and every process-spawning entry point with a
function that raises WriteRefused, so aliases (`from epics import caput as w`), attribute chains and
`getattr` all reach the refusal: they resolve to the same patched objects.

Covered in read_only mode:
- pyepics: `caput`, `caput_many`, `ca.put`, `ca.put_many`, `PV.put`, the `PV.value` setter, `Motor`
  and `Device` writers, and the raw `epics.ca.libca` put functions (libca is loaded first, then
  wrapped, so reads keep working and ctypes can be closed);
- caproto clients (`sync.write`, threading/asyncio `PV.write`, `Batch.write`, pyepics_compat `PV.put`);
- process spawning: subprocess, os/posix exec*/spawn*/system/popen, `_posixsubprocess.fork_exec`;
- native code loading: `ctypes.CDLL`/`PyDLL`/`cdll`/`pydll`/`LibraryLoader`, `_ctypes.dlopen`.

This is one Python process guarding itself: code determined to undo it (module reloads, gc walks)
can. The boundary that code cannot undo is the EPICS side: read-only kernels talk to a read-only
Channel Access endpoint (see sim_ioc.py `--read-only-port`, a CA gateway with access security in
production).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from .errors import WriteRefused, record_refusal

_installed_mode: str | None = None

# libca functions that write; everything else on the library stays callable (reads, monitors).
_LIBCA_PUTS = frozenset({"ca_array_put", "ca_array_put_callback", "ca_put", "ca_put_callback", "ca_sg_array_put"})


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


def _patch_methods(module_name: str, class_name: str, methods: tuple[str, ...]) -> None:
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception:  # noqa: BLE001 - absent library or class
        return
    for name in methods:
        if hasattr(cls, name):
            setattr(cls, name, _refuser(f"{class_name}.{name}"))


def _guarded_libca(real: Any) -> Any:
    """A stand-in for pyepics' ctypes handle on libca that refuses the put functions."""
    refusals = {name: _refuser(f"epics.ca.libca.{name}") for name in _LIBCA_PUTS}

    class GuardedLibca:
        __slots__ = ()

        def __getattr__(self, name: str) -> Any:
            if name in refusals:
                return refusals[name]
            return getattr(real, name)

        def __setattr__(self, name: str, value: Any) -> None:
            if name in refusals:
                return
            setattr(real, name, value)

        def __getitem__(self, name: str) -> Any:
            return self.__getattr__(name)

    return GuardedLibca()


def _guard_epics() -> None:
    try:
        import epics
        import epics.ca
        import epics.pv
    except Exception:  # noqa: BLE001
        return
    # Load libca (and create the CA context) now, while ctypes still works, then wrap it.
    try:
        if epics.ca.libca is None:
            epics.ca.initialize_libca()
        if epics.ca.libca is not None:
            epics.ca.libca = _guarded_libca(epics.ca.libca)
    except Exception:  # noqa: BLE001 - no libca here: pyepics cannot talk CA at all
        pass
    for mod, attr in [("epics", "caput"), ("epics", "caput_many"), ("epics.ca", "put"), ("epics.ca", "put_many")]:
        _patch(mod, attr, f"{mod}.{attr}")
    refuse_put = _refuser("PV.put")
    epics.pv.PV.put = lambda self, *a, **k: refuse_put(*a, **k)  # type: ignore[method-assign]
    original_value = epics.pv.PV.value

    def _set_value(self: Any, val: Any) -> None:
        refuse_put(val)

    epics.pv.PV.value = property(original_value.fget, _set_value, original_value.fdel, original_value.__doc__)
    _patch_methods("epics.motor", "Motor", ("move", "put", "set_position", "tweak", "set_field", "put_field"))
    _patch_methods("epics.device", "Device", ("put", "save_state", "restore_state"))


def _guard_caproto() -> None:
    _patch("caproto.sync.client", "write", "caproto.sync.client.write")
    _patch_methods("caproto.threading.client", "PV", ("write",))
    _patch_methods("caproto.threading.client", "Batch", ("write",))
    _patch_methods("caproto.asyncio.client", "PV", ("write",))
    _patch_methods("caproto.threading.pyepics_compat", "PV", ("put",))


def _guard_processes() -> None:
    import subprocess

    for name in ("run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"):
        setattr(subprocess, name, _refuser(f"subprocess.{name}"))
    for name in (
        "system",
        "popen",
        "execv",
        "execve",
        "execvp",
        "execvpe",
        "execl",
        "execle",
        "execlp",
        "execlpe",
        "spawnv",
        "spawnve",
        "spawnvp",
        "spawnvpe",
        "spawnl",
        "spawnle",
        "spawnlp",
        "spawnlpe",
        "posix_spawn",
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
    _patch("_posixsubprocess", "fork_exec", "_posixsubprocess.fork_exec")
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
    _patch("_ctypes", "dlopen", "_ctypes.dlopen")


def install(mode: str | None = None) -> str:
    """Install the guard for `mode` (default: $PYEXEC_EXECUTION_MODE, and read_only when unset: fail closed)."""
    global _installed_mode
    mode = mode or os.environ.get("PYEXEC_EXECUTION_MODE") or "read_only"
    if mode not in ("read_only", "write_access"):
        mode = "read_only"
    if mode == "read_only" and _installed_mode != "read_only":
        _guard_epics()
        _guard_caproto()
        _guard_processes()
    _installed_mode = mode if _installed_mode != "read_only" else "read_only"
    return _installed_mode


def installed_mode() -> str | None:
    return _installed_mode
