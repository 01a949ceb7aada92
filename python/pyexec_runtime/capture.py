"""Result capture shared by the local runner and the Jupyter kernels: results.json, figures/, metadata."""

from __future__ import annotations

import io
import json
import os
import sys
from typing import Any

from .serialize import to_jsonable


def figure_pngs() -> list[bytes]:
    """Renders every open matplotlib figure as PNG (dpi 100, tight, white) and closes them all."""
    if "matplotlib.pyplot" not in sys.modules:
        return []
    try:
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001
        return []
    pngs: list[bytes] = []
    for num in plt.get_fignums():
        buf = io.BytesIO()
        try:
            plt.figure(num).savefig(buf, format="png", dpi=100, bbox_inches="tight", facecolor="white")
            pngs.append(buf.getvalue())
        except Exception:  # noqa: BLE001 - a broken figure must not lose the results
            pass
    plt.close("all")
    return pngs


def save_figures(folder: str) -> list[str]:
    """Saves every open matplotlib figure to figures/figure_NN.png and closes it; returns the paths."""
    pngs = figure_pngs()
    if not pngs:
        return []
    fig_dir = os.path.join(folder, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    paths: list[str] = []
    for i, png in enumerate(pngs, start=1):
        path = os.path.join(fig_dir, f"figure_{i:02d}.png")
        with open(path, "wb") as fh:
            fh.write(png)
        paths.append(path)
    return paths


def results_json(namespace: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """namespace['results'] as JSON text, with metadata about what happened (missing, not serialisable)."""
    if "results" not in namespace:
        return {"results_missing": True}, None
    try:
        text = json.dumps(to_jsonable(namespace["results"]), allow_nan=False)
    except Exception as exc:  # noqa: BLE001
        return {"results_missing": False, "results_save_error": f"{type(exc).__name__}: {exc}"}, None
    return {"results_missing": False, "results_is_none": namespace["results"] is None}, text


def save_results(folder: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Writes results.json from namespace['results']; returns metadata about what happened."""
    meta, text = results_json(namespace)
    if text is not None:
        with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as fh:
            fh.write(text)
    return meta
