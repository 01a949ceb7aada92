"""The asynchronous client: the methods of `Client`, as coroutines; `stream` an async iterator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from . import _core
from ._errors import RequestFailed, RequestNotFoundError
from ._models import Event, RequestInfo, SubmitResult


class AsyncClient:
    """The asynchronous producer client (see Client)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        poll_seconds: int = 30,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.poll_seconds = poll_seconds
        self._http = httpx.AsyncClient(
            base_url=_core.base_url(url),
            headers=_core.headers(token),
            timeout=httpx.Timeout(timeout, read=max(timeout, poll_seconds + 15.0)),
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def submit(self, request: Any) -> SubmitResult:
        res = await self._http.post("/v1/requests", json=_core.request_body(request))
        return _core.submit_result(_core.answer(res))

    async def get(self, request_id: str) -> RequestInfo:
        return _core.info(_core.answer(await self._http.get(f"/v1/requests/{quote(request_id)}")))

    async def by_thread(self, thread_id: str) -> RequestInfo:
        page = _core.answer(await self._http.get("/v1/requests", params={"thread_id": thread_id, "limit": 1}))
        if not page["items"]:
            raise RequestNotFoundError(f"no request for thread {thread_id}", status=404)
        return _core.info(page["items"][0])

    async def list(self, **filters: Any) -> dict[str, Any]:
        if isinstance(filters.get("status"), (list, tuple)):
            filters["status"] = ",".join(filters["status"])
        params = {k: v for k, v in filters.items() if v is not None}
        return _core.answer(await self._http.get("/v1/requests", params=params))

    async def cancel(self, request_id: str) -> dict[str, Any]:
        return _core.answer(await self._http.post(f"/v1/requests/{quote(request_id)}/cancel"))

    async def wait(self, request_id: str, *, timeout: float = 600.0, return_on_approval: bool = True) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = max(1, min(self.poll_seconds, int(deadline - time.monotonic() + 0.999)))
            res = await self._http.get(
                f"/v1/requests/{quote(request_id)}/wait",
                params={"timeout_seconds": left, "return_on_approval": str(return_on_approval).lower()},
            )
            kind, value = _core.wait_outcome(_core.answer(res))
            if kind == "finished":
                return value
            if kind == "approval_required":
                raise value
            if time.monotonic() >= deadline:
                raise _core.timeout_error(request_id, value)

    async def stream(self, request_id: str, *, after: str | None = None) -> AsyncIterator[Event]:
        last = after
        failures = 0
        while True:
            headers = {"accept": "text/event-stream", **({"last-event-id": last} if last else {})}
            try:
                async with self._http.stream(
                    "GET",
                    f"/v1/requests/{quote(request_id)}/events",
                    headers=headers,
                    timeout=httpx.Timeout(30.0, read=None),
                ) as res:
                    if not res.is_success:
                        await res.aread()
                        _core.answer(res)
                    parser = _core.SseParser()
                    async for line in res.aiter_lines():
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
                await asyncio.sleep(0.25 * failures)

    async def resume(
        self, thread_id: str, *, timeout: float = 600.0, return_on_approval: bool = True
    ) -> dict[str, Any]:
        info = await self.by_thread(thread_id)
        return await self.wait(info.request_id, timeout=timeout, return_on_approval=return_on_approval)

    async def run(self, request: Any, *, timeout: float = 600.0) -> dict[str, Any]:
        response = await self.wait((await self.submit(request)).request_id, timeout=timeout)
        if response.get("status") != "succeeded":
            raise RequestFailed(response)
        return response

    async def figure(self, request_id: str, index: int) -> bytes:
        res = await self._http.get(f"/v1/requests/{quote(request_id)}/figures/{index}")
        if not res.is_success:
            _core.answer(res)
        return res.content

    async def whoami(self) -> dict[str, Any]:
        return _core.answer(await self._http.get("/v1/whoami"))
