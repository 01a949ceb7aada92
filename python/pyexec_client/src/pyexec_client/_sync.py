"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from . import _core
from ._errors import RequestFailed, RequestNotFoundError
from ._models import Event, RequestInfo, SubmitResult


class Client:
    """A producer's client of the pyexec producer API (URL and a `producer` token).

    `submit` a request (idempotent by `thread_id` and content), `stream` its events (live output),
    `wait` for its response (raises ApprovalRequired when held), `cancel` it, `resume(thread_id)`
    from any process, `run` = submit + wait (raises RequestFailed unless it succeeded)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        poll_seconds: int = 30,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.poll_seconds = poll_seconds
        self._http = httpx.Client(
            base_url=_core.base_url(url),
            headers=_core.headers(token),
            timeout=httpx.Timeout(timeout, read=max(timeout, poll_seconds + 15.0)),
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit(self, request: Any) -> SubmitResult:
        return _core.submit_result(_core.answer(self._http.post("/v1/requests", json=_core.request_body(request))))

    def get(self, request_id: str) -> RequestInfo:
        return _core.info(_core.answer(self._http.get(f"/v1/requests/{quote(request_id)}")))

    def by_thread(self, thread_id: str) -> RequestInfo:
        page = _core.answer(self._http.get("/v1/requests", params={"thread_id": thread_id, "limit": 1}))
        if not page["items"]:
            raise RequestNotFoundError(f"no request for thread {thread_id}", status=404)
        return _core.info(page["items"][0])

    def list(self, **filters: Any) -> dict[str, Any]:
        """One page: `status` (list or comma string), `thread_id`, `since`, `until`, `limit`, `cursor`."""
        if isinstance(filters.get("status"), (list, tuple)):
            filters["status"] = ",".join(filters["status"])
        return _core.answer(self._http.get("/v1/requests", params={k: v for k, v in filters.items() if v is not None}))

    def cancel(self, request_id: str) -> dict[str, Any]:
        return _core.answer(self._http.post(f"/v1/requests/{quote(request_id)}/cancel"))

    def wait(self, request_id: str, *, timeout: float = 600.0, return_on_approval: bool = True) -> dict[str, Any]:
        """The response once the request ended (whatever its status). Raises ApprovalRequired when it
        is held (unless `return_on_approval=False`), WaitTimeout past `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(1, min(self.poll_seconds, int(deadline - time.monotonic() + 0.999)))
            answer = _core.answer(
                self._http.get(
                    f"/v1/requests/{quote(request_id)}/wait",
                    params={"timeout_seconds": left, "return_on_approval": str(return_on_approval).lower()},
                )
            )
            kind, value = _core.wait_outcome(answer)
            if kind == "finished":
                return value
            if kind == "approval_required":
                raise value
            if time.monotonic() >= deadline:
                raise _core.timeout_error(request_id, value)

    def stream(self, request_id: str, *, after: str | None = None) -> Iterator[Event]:
        """The request's events from the start (or after the event id `after`) until `finished`,
        live; a dropped connection is resumed after the last event seen (Last-Event-ID)."""
        last = after
        failures = 0
        while True:
            headers = {"accept": "text/event-stream", **({"last-event-id": last} if last else {})}
            try:
                with self._http.stream(
                    "GET",
                    f"/v1/requests/{quote(request_id)}/events",
                    headers=headers,
                    timeout=httpx.Timeout(30.0, read=None),
                ) as res:
                    if not res.is_success:
                        res.read()
                        _core.answer(res)
                    parser = _core.SseParser()
                    for line in res.iter_lines():
                        event = parser.line(line)
                        if event is None:
                            continue
                        failures = 0
                        last = event.id
                        yield event
                        if event.type == "finished":
                            return
            except (httpx.TransportError, httpx.StreamError):
                failures += 1
                if failures > 5:
                    raise
                time.sleep(0.25 * failures)

    def resume(self, thread_id: str, *, timeout: float = 600.0, return_on_approval: bool = True) -> dict[str, Any]:
        """Waits on the request of a thread id (after a restart, or after the approver decided)."""
        return self.wait(self.by_thread(thread_id).request_id, timeout=timeout, return_on_approval=return_on_approval)

    def run(self, request: Any, *, timeout: float = 600.0) -> dict[str, Any]:
        """Submit and wait: the response of a request that succeeded. Raises ApprovalRequired when
        held, RequestFailed when it ended otherwise."""
        response = self.wait(self.submit(request).request_id, timeout=timeout)
        if response.get("status") != "succeeded":
            raise RequestFailed(response)
        return response

    def figure(self, request_id: str, index: int) -> bytes:
        """A figure of a finished request (PNG bytes), by its index in `figure_paths`."""
        res = self._http.get(f"/v1/requests/{quote(request_id)}/figures/{index}")
        if not res.is_success:
            _core.answer(res)
        return res.content

    def whoami(self) -> dict[str, Any]:
        return _core.answer(self._http.get("/v1/whoami"))
