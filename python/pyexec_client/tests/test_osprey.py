"""The Osprey adapter against a running fleet: Osprey's capability code with one line changed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import request
from pyexec_client.osprey import (
    ApprovalInterrupt,
    CodeRuntimeError,
    PyexecPythonService,
    PythonExecutionRequest,
)


class Command:
    """LangGraph's Command, as far as the service reads it (`resume`)."""

    def __init__(self, resume: dict) -> None:
        self.resume = resume


def service_config(thread_id: str) -> dict:
    # As Osprey's capability builds it (get_full_configuration() left out).
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": "python_executor"}}


def osprey_request(kind: str) -> PythonExecutionRequest:
    body = request(kind)
    return PythonExecutionRequest(
        user_query=body["user_query"],
        task_objective=body["task_objective"],
        capability_prompts=["**ANALYSIS REQUIREMENTS:**", "- Generate statistical summary of the data"],
        expected_results={"statistics": "dict"},
        execution_folder_name=kind,
        capability_context_data={"beam": {"current_mA": 500}},
        config={"ignored": True},  # Osprey's capability passes it; pydantic ignores it
    )


def test_ainvoke_returns_osprey_s_service_result(api_url: str, token: str) -> None:
    async def main() -> None:
        service = PyexecPythonService(api_url, token)
        try:
            result = await service.ainvoke(osprey_request("prints"), config=service_config(request("x")["thread_id"]))
        finally:
            await service.aclose()
        ex = result.execution_result
        assert ex.results == {"lines": 20}
        assert "line 19" in ex.stdout
        assert ex.notebook_path is not None and ex.notebook_path.name == "notebook.ipynb"
        assert ex.notebook_link and ex.notebook_link.startswith("http://jupyter.test:8888/lab/tree/executions/")
        assert ex.notebook_link.endswith("/notebook.ipynb")
        assert len(ex.figures) == 1 and ex.figures[0].suffix == ".png"
        assert isinstance(ex.folder_path, Path)
        assert "plt.subplots" in result.generated_code
        assert result.generation_attempt == 1
        assert ex.to_dict()["figure_count"] == 1

    asyncio.run(main())


def test_approval_interrupt_then_resume_with_osprey_s_command(api_url: str, token: str, approver) -> None:
    thread = request("write")["thread_id"]

    async def main() -> None:
        service = PyexecPythonService(api_url, token)
        try:
            with pytest.raises(ApprovalInterrupt) as held:
                await service.ainvoke(osprey_request("write"), config=service_config(thread))
            # What handle_service_with_interrupts reads: e.args[0][0].value
            payload = held.value.args[0][0].value
            assert "HUMAN APPROVAL REQUIRED" in payload["user_message"]
            resume = payload["resume_payload"]
            assert resume["approval_type"] == "python_executor"
            assert "caput" in resume["code"]
            assert resume["execution_mode"] == "write_access"
            assert resume["thread_id"] == thread
            approver.approve(resume["hold_job_id"])
            result = await service.ainvoke(Command(resume={"approved": True}), config=service_config(thread))
            assert result.execution_result.results["new_value"] == result.execution_result.results["old_value"] + 1
        finally:
            await service.aclose()

    asyncio.run(main())


def test_declined_in_chat_cancels_and_rejected_by_the_approver_raises(api_url: str, token: str, approver) -> None:
    async def main() -> None:
        service = PyexecPythonService(api_url, token)
        try:
            declined = request("write")["thread_id"]
            with pytest.raises(ApprovalInterrupt):
                await service.ainvoke(osprey_request("write"), config=service_config(declined))
            with pytest.raises(CodeRuntimeError) as no:
                await service.ainvoke(Command(resume={"approved": False}), config=service_config(declined))
            assert no.value.response["status"] == "cancelled"

            rejected = request("write")["thread_id"]
            with pytest.raises(ApprovalInterrupt) as held:
                await service.ainvoke(osprey_request("write"), config=service_config(rejected))
            approver.reject(held.value.hold_job_id, "wrong magnet")
            with pytest.raises(CodeRuntimeError) as failed:
                await service.ainvoke(Command(resume={"approved": True}), config=service_config(rejected))
            assert failed.value.response["status"] == "rejected"
            assert "wrong magnet" in str(failed.value)
        finally:
            await service.aclose()

    asyncio.run(main())


def test_sync_invoke(api_url: str, token: str) -> None:
    service = PyexecPythonService(api_url, token)
    result = service.invoke(osprey_request("ok"), config=service_config(request("ok")["thread_id"]))
    assert result.execution_result.results == {"value": 42}
