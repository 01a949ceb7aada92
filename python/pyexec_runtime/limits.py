"""Channel limits at run time (Osprey's limits database). Filled in by the kernel-pool work; a no-op
unless PYEXEC_LIMITS_FILE names a database."""
from __future__ import annotations

import os


def install_from_env() -> bool:
    path = os.environ.get("PYEXEC_LIMITS_FILE")
    if not path:
        return False
    return False
