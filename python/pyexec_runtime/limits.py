"""Channel limits at run time (Osprey's limits database, `control_system.limits_checking`).

The database is JSON: one entry per channel, `{min_value, max_value, max_step, writable}` (all
optional), plus an optional `defaults` entry merged under every listed channel; keys starting with
`_` (`_comment`, `_version`, ...) are skipped, and entries that are not objects are skipped too.

Every pyepics write reaches `epics.ca.put` (caput, caput_many, PV.put, PV.value = ..., Motor and
Device writers), so the check wraps that one function. A violation raises ChannelLimitsViolation (a
safety refusal: terminal, never retried) before anything is sent, unless `on_violation` is `skip`:
then the write is dropped with a warning on stderr and reported in the metadata.

    install(database, allow_unlisted=True, on_violation="error")   # from a dict (kernels)
    install_from_env()     # PYEXEC_LIMITS_FILE, PYEXEC_LIMITS_ALLOW_UNLISTED, PYEXEC_LIMITS_ON_VIOLATION
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

from .errors import ChannelLimitsViolation, record_refusal

_FIELDS = ("min_value", "max_value", "max_step", "writable")

# Writes dropped under on_violation=skip, reported by the runner / kernel session.
SKIPPED: list[dict] = []


class LimitsDatabaseError(ValueError):
    """The limits database is missing or malformed (fail fast at start-up)."""


def load_database(path: str) -> dict[str, dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except FileNotFoundError as exc:
        raise LimitsDatabaseError(f"limits database not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise LimitsDatabaseError(f"limits database {path} is not valid JSON: {exc}") from exc
    return normalise(raw)


def normalise(raw: Any) -> dict[str, dict[str, Any]]:
    """Channel name -> limits, with `defaults` merged in; comments and malformed entries skipped."""
    if not isinstance(raw, dict):
        raise LimitsDatabaseError("limits database must be a JSON object")
    defaults = raw.get("defaults") if isinstance(raw.get("defaults"), dict) else {}
    db: dict[str, dict[str, Any]] = {}
    for name, entry in raw.items():
        if name == "defaults" or name.startswith("_") or not isinstance(entry, dict):
            continue
        merged = {k: v for k, v in {**defaults, **entry}.items() if k in _FIELDS}
        if any(k in merged and not _is_number(merged[k]) for k in ("min_value", "max_value", "max_step")):
            continue
        db[name] = merged
    return db


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _as_number(value: Any) -> float | None:
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            value = value.tolist() if value.size != 1 else value.item()
    except ImportError:
        pass
    if isinstance(value, (list, tuple)):
        value = value[0] if len(value) == 1 else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class Checker:
    def __init__(self, database: dict[str, dict[str, Any]], allow_unlisted: bool, read_current: Any) -> None:
        self.database = database
        self.allow_unlisted = allow_unlisted
        self.read_current = read_current

    def check(self, channel: str, value: Any) -> None:
        """Raises ChannelLimitsViolation when writing `value` to `channel` breaks the database."""
        limits = self.database.get(channel)
        if limits is None:
            if not self.allow_unlisted:
                raise ChannelLimitsViolation(
                    f"{channel}: not in the limits database, and unlisted channels are not writable"
                )
            return
        if limits.get("writable", True) is False:
            raise ChannelLimitsViolation(f"{channel}: read-only in the limits database (writable: false)")
        number = _as_number(value)
        if number is None:
            return  # Non-numeric values skip the range checks (as Osprey does).
        lo, hi = limits.get("min_value"), limits.get("max_value")
        if lo is not None and number < lo:
            raise ChannelLimitsViolation(f"{channel}: {number} is below min_value {lo}")
        if hi is not None and number > hi:
            raise ChannelLimitsViolation(f"{channel}: {number} is above max_value {hi}")
        step = limits.get("max_step")
        if step is not None:
            try:
                current = _as_number(self.read_current(channel))
            except Exception as exc:  # a failed read blocks the write
                raise ChannelLimitsViolation(
                    f"{channel}: max_step check failed, cannot read the current value ({exc})"
                ) from exc
            if current is None:
                raise ChannelLimitsViolation(f"{channel}: max_step check failed, the current value is not numeric")
            if abs(number - current) > step:
                raise ChannelLimitsViolation(
                    f"{channel}: step {abs(number - current):g} from {current:g} to {number:g} exceeds max_step {step}"
                )


_checker: Checker | None = None


def install(database: dict[str, Any], allow_unlisted: bool = True, on_violation: str = "error") -> bool:
    """Wraps epics.ca.put with the limits check. Returns False when pyepics is absent."""
    global _checker
    try:
        import epics.ca as ca
    except Exception:  # noqa: BLE001
        return False

    def read_current(channel: str) -> Any:
        chid = ca.create_channel(channel, connect=True, auto_cb=False)
        value = ca.get(chid, timeout=5.0)
        if value is None:
            raise TimeoutError("no value")
        return value

    _checker = Checker(normalise(database), allow_unlisted, read_current)
    checker = _checker
    original_put = ca.put

    def checked_put(chid: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        channel = ca.name(chid)
        try:
            checker.check(channel, value)
        except ChannelLimitsViolation as exc:
            if on_violation == "skip":
                SKIPPED.append({"channel": channel, "value": repr(value)[:200], "reason": str(exc)})
                print(f"pyexec: write to {channel} skipped: {exc}", file=sys.stderr)
                return None
            raise record_refusal(exc) from None
        return original_put(chid, value, *args, **kwargs)

    checked_put.__name__ = "put"
    ca.put = checked_put
    return True


def install_from_env() -> bool:
    path = os.environ.get("PYEXEC_LIMITS_FILE")
    if not path:
        return False
    with open(path, encoding="utf-8") as fh:
        database = json.load(fh)
    allow = os.environ.get("PYEXEC_LIMITS_ALLOW_UNLISTED", "true").lower() not in ("0", "false", "no")
    return install(database, allow, os.environ.get("PYEXEC_LIMITS_ON_VIOLATION", "error"))
