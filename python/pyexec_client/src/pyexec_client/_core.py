"""What the sync and async clients share: paths, answers to results, server-sent events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from ._errors import ApprovalRequired, PyexecError, WaitTimeout, error_from_problem
from ._models import Event, RequestInfo, SubmitResult


def base_url(url: str) -> str:
    return url.rstrip("/")


def headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "user-agent": "pyexec-client-python/0.1"}


def request_body(request: Any) -> dict[str, Any]:
    """A request as JSON: a dict, or a model with `model_dump` (pydantic), unset fields left out."""
    if isinstance(request, Mapping):
        return dict(request)
    dump = getattr(request, "model_dump", None)
    if callable(dump):
        return dump(exclude_none=True, mode="json")
    raise TypeError("a request is a dict or a pydantic model")


def answer(res: httpx.Response) -> Any:
    """The JSON of a successful answer; the error class of a problem."""
    if res.is_success:
        return res.json()
    try:
        body = res.json()
    except ValueError:
        body = {"detail": res.text or res.reason_phrase}
    raise error_from_problem(res.status_code, body)


def submit_result(d: dict[str, Any]) -> SubmitResult:
    return SubmitResult(request_id=d["request_id"], thread_id=d["thread_id"], created=d["created"])


def wait_outcome(d: dict[str, Any]) -> tuple[str, Any]:
    """("finished", response) | ("approval_required", ApprovalRequired) | ("timeout", request json)."""
    kind = d.get("kind")
    if kind == "finished":
        return "finished", d["response"]
    if kind == "approval_required":
        return "approval_required", ApprovalRequired(d)
    if kind == "timeout":
        return "timeout", d.get("request")
    raise PyexecError(f"unexpected wait answer: {kind!r}")


def timeout_error(request_id: str, request: dict[str, Any] | None) -> WaitTimeout:
    status = (request or {}).get("status", "unknown")
    return WaitTimeout(f"request {request_id} did not finish in time (status {status})", request)


def info(d: dict[str, Any]) -> RequestInfo:
    return RequestInfo.from_json(d)


class SseParser:
    """Feeds lines of a text/event-stream; returns an Event at the end of each message."""

    def __init__(self) -> None:
        self.data: list[str] = []

    def line(self, line: str) -> Event | None:
        line = line.rstrip("\r")
        if line == "":
            if not self.data:
                return None
            payload = "\n".join(self.data)
            self.data = []
            return Event.from_json(json.loads(payload))
        if line.startswith("data:"):
            value = line[5:]
            self.data.append(value[1:] if value.startswith(" ") else value)
        return None
