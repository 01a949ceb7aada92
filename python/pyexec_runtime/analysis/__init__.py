"""Static analysis of generated Python, run in a long-lived helper process (see server.py).

`analyze(code, options)` gives the syntax verdict of CPython's own compiler and follows names from
imports to control-system operations (model.py lists what counts as a write or a read).

The passes, in the order they run (analyze.py):
  collect.py   pass 1: one walk over the tree, recording scopes and events
  values.py    the abstract values the solver computes with: their kinds, bounds and widening
  library.py   models of builtins and library functions (MODELS: one entry a line)
  solve.py     pass 2: the fixpoint over the events (Solver), with evaluate.py (expressions) and
               calls.py (calls) as its mixins
  rules.py     pass 3: the EPICS rules (Checker), with risks.py (processes, dynamic code, network,
               files, secrets) and cli.py (command lines) as its mixins
"""

from .analyze import analyze

__all__ = ["analyze"]
