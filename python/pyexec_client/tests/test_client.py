"""The sync and async clients against a running fleet: success, streaming, approval, rejection,
cancel, resume by thread id, and the API's errors as exception classes."""

from __future__ import annotations

import asyncio

import pytest
from conftest import request

from pyexec_client import (
    ApprovalRequired,
    AsyncClient,
    Client,
    InvalidRequestError,
    RequestFailed,
    RequestNotFoundError,
    UnauthorizedError,
)


def test_run_returns_the_response_of_a_request_that_succeeded(api_url: str, token: str) -> None:
    with Client(api_url, token) as client:
        response = client.run(request("ok"))
        assert response["status"] == "succeeded"
        assert response["results"] == {"value": 42}
        assert response["execution_result"]["results"] == {"value": 42}


def test_the_same_thread_id_is_the_same_request(api_url: str, token: str) -> None:
    with Client(api_url, token) as client:
        body = request("ok")
        first, again = client.submit(body), client.submit(body)
        assert (first.created, again.created) == (True, False)
        assert again.request_id == first.request_id
        assert client.resume(body["thread_id"])["request_id"] == first.request_id


def test_stream_sees_every_chunk_in_order_before_the_end(api_url: str, token: str) -> None:
    with Client(api_url, token) as client:
        sub = client.submit(request("prints"))
        events = list(client.stream(sub.request_id))
        assert events[-1].type == "finished" and events[-1].status == "succeeded"
        types = [e.type for e in events]
        assert types.index("stdout") < types.index("finished")
        text = "".join(e.text for e in events if e.type == "stdout")
        assert text.startswith("line 0\nline 1\n")
        assert [line for line in text.splitlines() if line.startswith("line ")] == [f"line {i}" for i in range(20)]
        response = client.wait(sub.request_id)
        assert text == response["execution_stdout"]
        # Resuming after any event gives exactly the rest.
        middle = len(events) // 2
        rest = list(client.stream(sub.request_id, after=events[middle].id))
        assert [e.id for e in rest] == [e.id for e in events[middle + 1 :]]


def test_async_client_streams_and_waits(api_url: str, token: str) -> None:
    async def main() -> None:
        async with AsyncClient(api_url, token) as client:
            sub = await client.submit(request("prints"))
            chunks = [e.text async for e in client.stream(sub.request_id) if e.type == "stdout"]
            assert "".join(chunks).count("line ") == 20
            response = await client.wait(sub.request_id)
            assert response["results"] == {"lines": 20}
            assert "".join(chunks) == response["execution_stdout"]

    asyncio.run(main())


def test_approval_required_then_approved_then_resumed_by_thread_id(api_url: str, token: str, approver) -> None:
    body = request("write")
    with Client(api_url, token) as client:
        sub = client.submit(body)
        with pytest.raises(ApprovalRequired) as held:
            client.wait(sub.request_id)
        h = held.value
        assert h.request_id == sub.request_id
        assert "caput('DEVICE:PV:SETPOINT'" in (h.code or "")
        assert h.mode == "write_access"
        assert any("DEVICE:PV:SETPOINT" in w.get("pvs", []) for w in h.writes)
        approver.approve(h.hold_job_id)
    # Another process, knowing only the thread id.
    with Client(api_url, token) as later:
        response = later.resume(body["thread_id"])
        assert response["status"] == "succeeded"
        assert response["approval"]["decision"] == "approved"
        assert response["results"]["new_value"] == response["results"]["old_value"] + 1


def test_a_rejection_ends_the_request_rejected(api_url: str, token: str, approver) -> None:
    with Client(api_url, token) as client:
        sub = client.submit(request("write"))
        with pytest.raises(ApprovalRequired) as held:
            client.wait(sub.request_id)
        approver.reject(held.value.hold_job_id, "not during beam time")
        response = client.wait(sub.request_id)
        assert response["status"] == "rejected"
        assert response["reason"] == "not during beam time"
        with pytest.raises(RequestFailed) as failed:
            client.run(request("write", thread_id=sub.thread_id))
        assert failed.value.response["status"] == "rejected"


def test_cancel_interrupts_a_running_request(api_url: str, token: str) -> None:
    with Client(api_url, token) as client:
        sub = client.submit(request("slow"))
        for event in client.stream(sub.request_id):
            if event.type == "stdout":
                break
        assert client.cancel(sub.request_id)["cancel_requested"] is True
        response = client.wait(sub.request_id, timeout=60)
        assert response["status"] == "cancelled"


def test_errors_are_exception_classes(api_url: str, token: str) -> None:
    with Client(api_url, token) as client:
        with pytest.raises(InvalidRequestError) as invalid:
            client.submit({"user_query": "x", "task_objective": "y", "execution_folder_name": "../etc"})
        assert any("execution_folder_name" in e["path"] for e in invalid.value.errors)
        with pytest.raises(RequestNotFoundError):
            client.get("00000000-0000-4000-8000-000000000000")
        with pytest.raises(RequestNotFoundError):
            client.resume("no-such-thread")
    with Client(api_url, "wrong-token") as client, pytest.raises(UnauthorizedError):
        client.submit(request("ok"))
