"""Result capture shared by the local runner and the Jupyter kernels: results.json, figures/, metadata."""
from __future__ import annotations

import json
import os
from typing import Any

from .serialize import to_jsonable


def save_figures(folder: str) -> list[str]:
    """Saves every open matplotlib figure to figures/figure_NN.png and closes it; returns the paths."""
    try:
        import sys

        if "matplotlib.pyplot" not in sys.modules:
            return []
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001
        return []
    paths: list[str] = []
    nums = plt.get_fignums()
    if not nums:
        return paths
    fig_dir = os.path.join(folder, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    for i, num in enumerate(nums, start=1):
        path = os.path.join(fig_dir, f"figure_{i:02d}.png")
        try:
            plt.figure(num).savefig(path, dpi=100, bbox_inches="tight", facecolor="white")
            paths.append(path)
        except Exception:  # noqa: BLE001 - a broken figure must not lose the results
            pass
    plt.close("all")
    return paths


def save_results(folder: str, namespace: dict[str, Any]) -> dict[str, Any]:
    """Writes results.json from namespace['results']; returns metadata about what happened."""
    if "results" not in namespace:
        return {"results_missing": True}
    try:
        data = to_jsonable(namespace["results"])
        text = json.dumps(data, allow_nan=False)
    except Exception as exc:  # noqa: BLE001
        return {"results_missing": False, "results_save_error": f"{type(exc).__name__}: {exc}"}
    with open(os.path.join(folder, "results.json"), "w", encoding="utf-8") as fh:
        fh.write(text)
    return {"results_missing": False, "results_is_none": namespace["results"] is None}
