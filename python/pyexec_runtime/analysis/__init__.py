"""Static analysis of generated Python, run in a long-lived helper process (see server.py).

`analyze(code, options)` gives the syntax verdict of CPython's own compiler and follows names from
imports to control-system operations (model.py lists what counts as a write or a read).
"""

from .analyze import analyze

__all__ = ["analyze"]
