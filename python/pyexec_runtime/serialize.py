"""JSON serialisation of `results`: numpy, pandas, datetime, paths, sets, complex handled."""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import PurePath
from typing import Any


def to_jsonable(obj: Any, _depth: int = 0) -> Any:
    if _depth > 50:
        return {"_type": "truncated", "value": repr(obj)[:200]}
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return {"_type": "float", "value": repr(obj)}
        return obj
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, _depth + 1) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return {"_type": "set", "items": [to_jsonable(v, _depth + 1) for v in sorted(obj, key=repr)]}
    if isinstance(obj, (_dt.datetime, _dt.date, _dt.time)):
        return obj.isoformat()
    if isinstance(obj, _dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, complex):
        return {"_type": "complex", "real": obj.real, "imag": obj.imag}
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, bytes):
        return {"_type": "bytes", "length": len(obj)}
    mod = type(obj).__module__ or ""
    if mod.startswith("pandas"):
        if hasattr(obj, "to_dict"):
            try:
                if type(obj).__name__ == "DataFrame":
                    return to_jsonable(obj.to_dict(orient="list"), _depth + 1)
                return to_jsonable(obj.to_dict(), _depth + 1)
            except Exception:  # noqa: BLE001 - fall through to the generic form
                pass
        if hasattr(obj, "isoformat"):
            return obj.isoformat()
    if mod.startswith("numpy"):
        if hasattr(obj, "tolist"):
            return to_jsonable(obj.tolist(), _depth + 1)
        if hasattr(obj, "item"):
            return to_jsonable(obj.item(), _depth + 1)
    if hasattr(obj, "to_dict") and callable(obj.to_dict):
        try:
            return to_jsonable(obj.to_dict(), _depth + 1)
        except Exception:  # noqa: BLE001
            pass
    return {
        "_type": type(obj).__name__,
        "module": mod,
        "value": str(obj)[:10_000],
        "_serialization_note": "converted_to_string",
    }
