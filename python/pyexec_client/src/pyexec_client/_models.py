"""What the API answers, as small typed objects (the JSON stays available as `.raw`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SubmitResult:
    request_id: str
    thread_id: str
    #: False when the thread id was submitted before: that request is returned, nothing is enqueued twice.
    created: bool


@dataclass(frozen=True)
class RequestInfo:
    """Where a request is; `response` once it ended."""

    request_id: str
    thread_id: str
    status: str
    submitted_at: float
    updated_at: float
    cancel_requested: bool
    hold: dict[str, Any] | None
    submitted_by: str | None
    response: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RequestInfo:
        return cls(
            request_id=d["request_id"],
            thread_id=d["thread_id"],
            status=d["status"],
            submitted_at=d["submitted_at"],
            updated_at=d["updated_at"],
            cancel_requested=d["cancel_requested"],
            hold=d.get("hold"),
            submitted_by=d.get("submitted_by"),
            response=d.get("response"),
            raw=d,
        )


@dataclass(frozen=True)
class Event:
    """One event of a request (the API's server-sent events): `type` is submitted, status,
    approval_required, approved, stdout, stderr, display, output_dropped, cancel_requested or
    finished. `id` resumes a stream after it."""

    type: str
    id: str
    at: float
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def text(self) -> str:
        """stdout / stderr: the chunk."""
        return str(self.raw.get("text", ""))

    @property
    def status(self) -> str | None:
        return self.raw.get("status")

    @property
    def data(self) -> dict[str, Any]:
        """display: the MIME bundle (a figure's `image/png` is base64)."""
        return dict(self.raw.get("data") or {})

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Event:
        return cls(type=d["type"], id=d["id"], at=d["at"], raw=d)
