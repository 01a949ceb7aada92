"""The tests run against a running fleet with its producer API and approver API; the TypeScript
test test/integration/python-client.redis.test.ts starts them and sets these variables. The
fleet's generator picks the program by `execution_folder_name` (test/support/scripted-generator.ts):
ok, prints (a loop with a figure half-way), write (an EPICS write: held), slow (a minute)."""

from __future__ import annotations

import os
import uuid
from typing import Any

import httpx
import pytest

NEEDED = ("PYEXEC_API_URL", "PYEXEC_PRODUCER_TOKEN", "PYEXEC_APPROVER_URL", "PYEXEC_APPROVER_TOKEN")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    missing = [n for n in NEEDED if not os.environ.get(n)]
    if missing:
        skip = pytest.mark.skip(
            reason=f"needs a running fleet: {', '.join(missing)} (run by python-client.redis.test.ts)"
        )
        for item in items:
            item.add_marker(skip)


@pytest.fixture
def api_url() -> str:
    return os.environ["PYEXEC_API_URL"]


@pytest.fixture
def token() -> str:
    return os.environ["PYEXEC_PRODUCER_TOKEN"]


def request(kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "user_query": f"run the {kind} program",
        "task_objective": f"Run the {kind} program and return results",
        "execution_folder_name": kind,
        "thread_id": f"py-{kind}-{uuid.uuid4().hex[:12]}",
        **extra,
    }


class Approver:
    """A person at the approver API (what pyexec's approver console does)."""

    def __init__(self) -> None:
        self.http = httpx.Client(
            base_url=os.environ["PYEXEC_APPROVER_URL"],
            headers={"authorization": f"Bearer {os.environ['PYEXEC_APPROVER_TOKEN']}"},
            timeout=30,
        )

    def show(self, hold_id: str) -> dict[str, Any]:
        res = self.http.get(f"/api/held/{hold_id}")
        res.raise_for_status()
        return res.json()

    def approve(self, hold_id: str) -> None:
        shown = self.show(hold_id)
        res = self.http.post(
            f"/api/held/{hold_id}/approve",
            json={"codeSha256": shown["codeSha256"], "analysisSha256": shown["analysisSha256"]},
        )
        res.raise_for_status()

    def reject(self, hold_id: str, reason: str) -> None:
        res = self.http.post(f"/api/held/{hold_id}/reject", json={"reason": reason})
        res.raise_for_status()


@pytest.fixture
def approver() -> Approver:
    return Approver()
