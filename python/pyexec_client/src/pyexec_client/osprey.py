"""An Osprey-shaped `python_executor` service on pyexec: switch a capability by changing one line.

Osprey's capabilities do

    python_service = registry.get_service("python_executor")
    service_result = await handle_service_with_interrupts(service=python_service, request=..., config=...)
    results = service_result.execution_result.results

With pyexec, only the service changes:

    python_service = PyexecPythonService("http://pyexec-api:8471", token=os.environ["PYEXEC_TOKEN"])

`ainvoke(request, config)` submits the request with the thread id of `config["configurable"]`,
waits, and returns a PythonServiceResult whose `execution_result` has `results`, `stdout`,
`figure_paths` (`figures`), `notebook_path` and `notebook_link`. A request held for a person
raises ApprovalInterrupt (a LangGraph GraphInterrupt when langgraph is installed, so
`handle_service_with_interrupts` passes it up as Osprey's approval interrupt). The person decides
in pyexec's approver console; `ainvoke(Command(resume={"approved": True}), config)` then waits for
the outcome of the same thread, and `{"approved": False}` cancels it. A request that does not
succeed raises CodeRuntimeError, as Osprey's service does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._async import AsyncClient
from ._errors import ApprovalRequired, PyexecError

#: The fields pyexec's request model takes (the rest of Osprey's are accepted and not sent).
_SENT = (
    "user_query",
    "task_objective",
    "expected_results",
    "capability_prompts",
    "execution_folder_name",
    "retries",
    "planning_mode",
    "structured_plan",
    "capability_context_data",
    "session_context",
)


class PythonExecutionRequest(BaseModel):
    """Osprey's PythonExecutionRequest (same fields and defaults). Unknown keywords (Osprey's
    capability passes `config=`) are ignored, as pydantic does in Osprey."""

    model_config = ConfigDict(extra="ignore")

    user_query: str
    task_objective: str
    expected_results: dict[str, Any] = Field(default_factory=dict)
    capability_prompts: list[str] = Field(default_factory=list)
    execution_folder_name: str
    retries: int = 3
    planning_mode: str = "generator_driven"
    structured_plan: dict[str, Any] | None = None
    capability_context_data: dict[str, Any] | None = None
    #: Osprey fields no node reads; accepted, not sent.
    approved_code: str | None = None
    existing_execution_folder: str | None = None
    session_context: dict[str, Any] | None = None
    execution_folder_path: str | None = None

    def to_pyexec(self, thread_id: str | None = None, execution_method: str | None = None) -> dict[str, Any]:
        """The request as pyexec's API takes it."""
        body: dict[str, Any] = {}
        for name in _SENT:
            value = getattr(self, name)
            if value is None:
                continue
            if name == "structured_plan" and hasattr(value, "model_dump"):
                value = value.model_dump(mode="json")
            body[name] = value
        if thread_id:
            body["thread_id"] = thread_id
        if execution_method:
            body["execution_method"] = execution_method
        return body


@dataclass(frozen=True)
class PythonExecutionSuccess:
    """Osprey's PythonExecutionSuccess."""

    results: dict[str, Any]
    stdout: str
    execution_time: float
    folder_path: Path
    notebook_path: Path | None
    notebook_link: str | None
    figure_paths: list[Path] = field(default_factory=list)

    @property
    def figures(self) -> list[Path]:
        return self.figure_paths

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "execution_stdout": self.stdout,
            "execution_time_seconds": self.execution_time,
            "execution_folder": str(self.folder_path),
            "notebook_path": str(self.notebook_path) if self.notebook_path else None,
            "notebook_link": self.notebook_link,
            "figure_paths": [str(p) for p in self.figure_paths],
            "figure_count": len(self.figure_paths),
        }


@dataclass(frozen=True)
class PythonServiceResult:
    """Osprey's PythonServiceResult, plus pyexec's whole `response`."""

    execution_result: PythonExecutionSuccess
    generated_code: str
    generation_attempt: int = 1
    analysis_warnings: list[str] = field(default_factory=list)
    response: dict[str, Any] = field(default_factory=dict, repr=False)


class CodeRuntimeError(PyexecError):
    """The request ended otherwise than `succeeded` (failed, rejected, expired, cancelled)."""

    code = "code_runtime_error"

    def __init__(self, message: str, response: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.response = response or {}
        self.status_name = self.response.get("status")


class _InterruptValue:
    """What LangGraph's Interrupt carries: `.value` (read by handle_service_with_interrupts)."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value


class ApprovalInterrupt(ApprovalRequired):
    """Held for approval. `payload` is Osprey's approval interrupt payload (`user_message`,
    `resume_payload`); `args[0][0].value` is it too, as on a LangGraph GraphInterrupt."""

    def __init__(self, held: dict[str, Any], payload: dict[str, Any]) -> None:
        super().__init__(held)
        self.payload = payload
        self.args = ([_InterruptValue(payload)],)


try:  # With LangGraph installed, the interrupt is a GraphInterrupt too.
    from langgraph.errors import GraphInterrupt as _GraphInterrupt  # type: ignore[import-not-found]

    class _GraphApprovalInterrupt(ApprovalInterrupt, _GraphInterrupt):  # type: ignore[misc, valid-type]
        pass

    _INTERRUPT: type[ApprovalInterrupt] = _GraphApprovalInterrupt
except ImportError:  # pragma: no cover - depends on the environment
    _INTERRUPT = ApprovalInterrupt


def _configurable(config: Any) -> dict[str, Any]:
    if isinstance(config, dict):
        return dict(config.get("configurable") or {})
    return {}


def _resume_of(value: Any) -> dict[str, Any] | None:
    """The resume payload of LangGraph's Command(resume=...) or of a dict {"resume": ...}."""
    resume = getattr(value, "resume", None)
    if resume is None and isinstance(value, dict) and "resume" in value:
        resume = value["resume"]
    if resume is None:
        return None
    return resume if isinstance(resume, dict) else {"approved": bool(resume)}


class PyexecPythonService:
    """Osprey's python_executor service, backed by pyexec's producer API."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        wait_timeout: float = 3600.0,
        poll_seconds: int = 30,
        client: AsyncClient | None = None,
    ) -> None:
        self._client = client or AsyncClient(url, token, poll_seconds=poll_seconds)
        self.wait_timeout = wait_timeout

    async def aclose(self) -> None:
        await self._client.aclose()

    async def ainvoke(self, input: Any, config: dict[str, Any] | None = None) -> PythonServiceResult:
        configurable = _configurable(config)
        thread_id = configurable.get("thread_id")
        resume = _resume_of(input)
        if resume is not None:
            if not thread_id:
                raise PyexecError("resuming needs config['configurable']['thread_id']")
            info = await self._client.by_thread(str(thread_id))
            if resume.get("approved") is False:
                if info.status not in ("succeeded", "failed", "rejected", "expired", "cancelled"):
                    await self._client.cancel(info.request_id)
                response = await self._client.wait(info.request_id, timeout=self.wait_timeout, return_on_approval=False)
                raise CodeRuntimeError("Python code execution was not approved", response)
            # Approved in the chat: the decision that releases the code is the approver's, in pyexec.
            return await self._outcome(info.request_id, str(thread_id), held_again=False)
        request = input if isinstance(input, PythonExecutionRequest) else PythonExecutionRequest.model_validate(input)
        body = request.to_pyexec(
            thread_id=str(thread_id) if thread_id else None, execution_method=configurable.get("execution_method")
        )
        sub = await self._client.submit(body)
        return await self._outcome(sub.request_id, sub.thread_id, request)

    def invoke(self, input: Any, config: dict[str, Any] | None = None) -> PythonServiceResult:
        """`ainvoke` for synchronous callers (not from inside a running event loop)."""
        return asyncio.run(self.ainvoke(input, config))

    async def _outcome(
        self,
        request_id: str,
        thread_id: str,
        request: PythonExecutionRequest | None = None,
        held_again: bool = True,
    ) -> PythonServiceResult:
        try:
            response = await self._client.wait(request_id, timeout=self.wait_timeout, return_on_approval=held_again)
        except ApprovalRequired as held:
            raise _INTERRUPT(held.held, self._approval_payload(held, thread_id, request)) from None
        if response.get("status") != "succeeded":
            reason = response.get("reason") or response.get("status")
            raise CodeRuntimeError(f"Python code execution failed: {reason}", response)
        return _service_result(response)

    @staticmethod
    def _approval_payload(
        held: ApprovalRequired, thread_id: str, request: PythonExecutionRequest | None
    ) -> dict[str, Any]:
        concerns = [f"line {f.get('line')}: {f.get('message')}" for f in held.findings]
        writes = [f"{', '.join(w.get('pvs') or []) or w.get('target') or '?'} <- {w.get('value')}" for w in held.writes]
        message = (
            "⚠️ **HUMAN APPROVAL REQUIRED** ⚠️\n\n"
            f"**Task:** {held.task_objective or ''}\n\n{held.reason}\n\n"
            + (f"**Writes:** {'; '.join(writes)}\n\n" if writes else "")
            + f"An approver decides in pyexec's approver console (held job `{held.hold_job_id}`)."
        )
        return {
            "user_message": message,
            "resume_payload": {
                "approval_type": "python_executor",
                "step_objective": held.task_objective,
                "code": held.code,
                "analysis_details": {"findings": held.findings, "writes": held.writes, "risk": held.risk},
                "execution_mode": held.mode,
                "safety_concerns": concerns,
                "notebook_path": None,
                "notebook_link": None,
                "execution_request": request.model_dump(mode="json") if request else None,
                "expected_results": request.expected_results if request else None,
                "execution_folder_path": None,
                "request_id": held.request_id,
                "thread_id": thread_id,
                "hold_job_id": held.hold_job_id,
                "deadline": held.deadline,
            },
        }


def _service_result(response: dict[str, Any]) -> PythonServiceResult:
    ex = response.get("execution_result") or {}
    notebook = ex.get("notebook_path") or response.get("notebook_path")
    return PythonServiceResult(
        execution_result=PythonExecutionSuccess(
            results=ex.get("results") if ex else response.get("results") or {},
            stdout=ex.get("execution_stdout", response.get("execution_stdout", "")),
            execution_time=ex.get("execution_time_seconds", response.get("execution_time_seconds") or 0.0),
            folder_path=Path(ex.get("execution_folder", response.get("execution_folder", ""))),
            notebook_path=Path(notebook) if notebook else None,
            notebook_link=ex.get("notebook_link", response.get("notebook_link")),
            figure_paths=[Path(p) for p in ex.get("figure_paths", response.get("figure_paths", []))],
        ),
        generated_code=response.get("generated_code") or "",
        generation_attempt=response.get("generation_attempt") or 1,
        analysis_warnings=[],
        response=response,
    )


__all__ = [
    "ApprovalInterrupt",
    "CodeRuntimeError",
    "PyexecPythonService",
    "PythonExecutionRequest",
    "PythonExecutionSuccess",
    "PythonServiceResult",
]
