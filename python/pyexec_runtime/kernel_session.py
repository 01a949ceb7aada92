"""The kernel side of one pyexec request in a pooled Jupyter kernel.

pyexec's container executor sends one cell to a leased kernel: the request's code, as sent (its
outputs are the notebook's outputs), with the run's spec in the execute request's metadata
(`pyexec_run`, a JSON string). Around that cell, in the same request (one round trip), the kernel

1. runs `begin(spec)`: checks the kernel's mode and its confinement (spec `confinement`: the
   method the fleet requires), narrows the confinement to the request's working folder (no other
   request's folder stays writable), installs the channel limits, puts `context` and
   `approval_payload` in the user namespace, and moves to that folder; a set-up that fails is
   published as the run record's `setup_error`, and the code is not run;
2. runs the code;
3. runs `finish()`: classifies the outcome by exception class (a PyexecRefusal, raised or caught,
   is a safety refusal), serialises `results`, renders open figures, and publishes it all as one
   `application/vnd.pyexec.run+json` display message.

`begin` and `finish` may also be sent as silent cells of their own around the code (three cells).
Nothing goes through the file system, so a kernel in another container needs no shared volume.
`startup()` runs once per kernel, before its first request (IPKernelApp.exec_lines, kernel.py).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import traceback
from typing import Any

from IPython import get_ipython
from IPython.display import publish_display_data

from . import confine, errors, guard, limits
from .capture import figure_pngs, results_json
from .context import Context

RUN_MIME = "application/vnd.pyexec.run+json"
#: The execute request's metadata key of the run spec (a JSON string; see the module's doc).
RUN_SPEC_KEY = "pyexec_run"
_state: dict[str, Any] = {}


def _shell() -> Any:
    return get_ipython()


_NOT_SET_UP = (
    "raise RuntimeError('pyexec: no run is set up in this kernel for this code (its set-up failed, or the kernel "
    "already ran its one request); none of it was executed')\n"
)


def _run_spec(shell: Any, kwargs: dict[str, Any]) -> str | None:
    """The run spec the executor sent in the execute request's metadata (`pyexec_run`), if any."""
    meta = kwargs.get("cell_meta")
    if not isinstance(meta, dict):
        parent = getattr(shell, "parent_header", None)
        meta = parent.get("metadata") if isinstance(parent, dict) else None
    spec = meta.get(RUN_SPEC_KEY) if isinstance(meta, dict) else None
    return spec if isinstance(spec, str) else None


def _gate(shell: Any) -> None:
    """Only one request's code runs in a kernel, and only once its run is set up.

    Every non-silent cell goes through here. A cell whose request carries a run spec in its
    metadata is set up here (begin) and finished here (finish), in the same request. Otherwise
    (the three-cell form: set-up, code and finish sent without waiting) the set-up is a silent cell
    of its own. Either way the first non-silent cell after a successful begin() runs, none before
    it and none after it. A cell refused here is replaced by a `raise` before IPython sees it, so a
    failed set-up (wrong mode, wrong confinement, undecodable request data) can never be followed by
    the code, whatever the kernel's abort window let through and whatever the code says.
    """
    original = shell.run_cell_async

    async def run_cell_async(raw_cell: str, *args: Any, silent: bool = False, **kwargs: Any) -> Any:
        folded = False
        if not silent:
            spec = _run_spec(shell, kwargs)
            set_up = True
            if spec is not None:
                try:
                    begin(spec)  # refuses a kernel that already began a run
                    folded = True
                except Exception as exc:  # noqa: BLE001 - reported to the executor, the code is not run
                    set_up = False
                    publish_display_data({RUN_MIME: {"setup_error": {"ename": type(exc).__name__, "evalue": str(exc)}}})
            if set_up and _state.get("started") and not _state.get("code_ran"):
                _state["code_ran"] = True
            else:
                folded = False
                raw_cell = _NOT_SET_UP
                kwargs["transformed_cell"] = _NOT_SET_UP
                kwargs["preprocessing_exc_tuple"] = None
        result = await original(raw_cell, *args, silent=silent, **kwargs)
        if folded:
            try:
                finish()
            except BaseException as exc:  # noqa: BLE001 - no record: the executor reports the run unreported
                print(f"pyexec: finish failed: {type(exc).__name__}: {exc}", file=sys.__stderr__, flush=True)
        return result

    shell.run_cell_async = run_cell_async


def startup() -> str:
    """Warm the kernel (imports) and install the guard of its mode before any user code."""
    for name in ("numpy", "pandas", "matplotlib", "matplotlib.pyplot", "epics"):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - optional packages
            pass
    mode = guard.install(os.environ.get("PYEXEC_EXECUTION_MODE") or "read_only")
    _state["mode"] = mode
    if _shell() is not None:
        _gate(_shell())
    # The run's confinement layer, built now but for the run's folder (begin() adds it).
    confine.prepare_narrowing(keep=[tempfile.gettempdir()])
    record = confine.current() or {"method": "none"}
    # The kernel's own stderr (the Jupyter server's log), not the IOPub stream of a request.
    print(f"pyexec kernel ready: mode {mode}, confinement {json.dumps(record)}", file=sys.__stderr__, flush=True)
    return mode


def begin(spec_json: str) -> None:
    spec = errors.decode_request_json(spec_json)
    mode = guard.installed_mode()
    if spec.get("mode") != mode:
        raise RuntimeError(f"pyexec: this kernel runs {mode}, the request needs {spec.get('mode')}")
    if _state.get("begun"):
        raise RuntimeError("pyexec: this kernel already ran a request; it must be recycled first")
    required = spec.get("confinement")
    record = confine.current() or {"method": "none"}
    if required and record.get("method") != required:
        raise RuntimeError(
            f"pyexec: this kernel's confinement is {record.get('method')}, the fleet requires {required}"
        )
    _state["begun"] = True
    errors.REFUSALS.clear()
    limits.SKIPPED.clear()
    lim = spec.get("limits")
    if lim:
        limits.install(lim["database"], bool(lim.get("allow_unlisted", True)), lim.get("on_violation", "error"))
    ns = _shell().user_ns
    ns.pop("results", None)
    ns["context"] = Context(spec.get("context") or {})
    ns["approval_payload"] = spec.get("approval_payload")
    folder = spec.get("folder")
    if not (folder and os.path.isdir(folder)):
        folder = tempfile.mkdtemp(prefix="pyexec-run-")
    confine.narrow_to(folder, keep=[tempfile.gettempdir()])
    os.chdir(folder)
    sys.last_type = sys.last_value = sys.last_traceback = None  # type: ignore[assignment]
    _state["started"] = True


def _outcome() -> dict[str, Any]:
    exc = getattr(sys, "last_value", None) if _state.get("started") else None
    meta: dict[str, Any] = {
        "success": exc is None,
        "execution_mode": _state.get("mode"),
        "confinement": confine.current() or {"method": "none"},
    }
    if exc is not None:
        if isinstance(exc, errors.PyexecRefusal):
            kind, etype = "refused", exc.error_type
        elif isinstance(exc, SyntaxError):
            kind, etype = "code", "syntax"
        else:
            kind, etype = "code", "runtime"
        meta.update(
            error_kind=kind,
            error_type=etype,
            error_name=type(exc).__name__,
            error=str(exc),
            traceback="".join(traceback.format_exception(exc)),
        )
    meta.update(errors.refusal_outcome())
    return meta


def finish() -> None:
    meta = _outcome()
    results_meta, text = results_json(_shell().user_ns) if meta["success"] else ({}, None)
    meta.update(results_meta)
    meta["refusals"] = list(errors.REFUSALS)
    meta["limits_skipped"] = list(limits.SKIPPED)
    meta["figures"] = [base64.b64encode(png).decode("ascii") for png in figure_pngs()]
    meta["results_json"] = text
    publish_display_data({RUN_MIME: meta})
