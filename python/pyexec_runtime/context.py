"""The `context` object generated code reads: capability_context_data from context.json."""

from __future__ import annotations

from typing import Any


class Context(dict):
    """capability_context_data, readable as context['key'] or context.key."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc
