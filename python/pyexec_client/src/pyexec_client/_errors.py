"""Errors: one class per problem code of the API (the same codes as the TypeScript clients)."""

from __future__ import annotations

from typing import Any


class PyexecError(Exception):
    """Base of every error of the client. `code` is the API's problem code, `status` its HTTP status."""

    code = "error"

    def __init__(self, message: str, *, status: int | None = None, problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}


class InvalidRequestError(PyexecError):
    """The request (or a parameter) is not valid; `errors` lists each field's problem. Nothing was enqueued."""

    code = "request_invalid"

    @property
    def errors(self) -> list[dict[str, str]]:
        return list(self.problem.get("errors") or [])


class RequestTooLargeError(InvalidRequestError):
    """The request is over a limit of the fleet (`pyexec.request_limits`: size, nesting, keys). Nothing was written."""

    code = "request_too_large"


class RequestNotFoundError(PyexecError):
    """No such request (never submitted, past its retention, or another producer's)."""

    code = "request_not_found"


class RequestFinishedError(PyexecError):
    """The request has already ended (nothing to cancel)."""

    code = "request_finished"


class ThreadConflictError(PyexecError):
    """The thread id is taken by another producer's request."""

    code = "thread_conflict"


class UnauthorizedError(PyexecError):
    """No valid bearer token."""

    code = "unauthorized"


class ForbiddenError(PyexecError):
    """The token's role may not do this (submitting needs a producer token)."""

    code = "forbidden"


class RateLimitedError(PyexecError):
    """Too many calls; `retry_after_seconds` says when to try again."""

    code = "rate_limited"

    @property
    def retry_after_seconds(self) -> float | None:
        return self.problem.get("retry_after_seconds")


class PayloadTooLargeError(PyexecError):
    """The body is larger than the API accepts."""

    code = "payload_too_large"


class TooManyStreamsError(PyexecError):
    """The API process holds as many open streams and waits as it allows; try again."""

    code = "too_many_streams"


class WaitTimeout(PyexecError):
    """The request did not end (nor was held) within the wait's timeout; it goes on."""

    code = "wait_timeout"

    def __init__(self, message: str, request: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.request = request


class RequestFailed(PyexecError):
    """Raised by `run` when the request ended otherwise than `succeeded`; `response` is the whole response."""

    code = "request_failed"

    def __init__(self, response: dict[str, Any]) -> None:
        super().__init__(
            f"request {response.get('request_id')} ended {response.get('status')}: {response.get('reason') or ''}".strip()
        )
        self.response = response

    @property
    def status_name(self) -> str:
        return str(self.response.get("status"))


class ApprovalRequired(PyexecError):
    """The request is held until a person approves exactly this code (in pyexec's approver console).

    Carries what the approver sees: `code`, `findings`, `writes` (PV, value), the reason, the mode,
    the risk, the deadline. Wait again (`wait`, or `resume(thread_id)` from any process) for the
    outcome after the decision.
    """

    code = "approval_required"

    def __init__(self, held: dict[str, Any]) -> None:
        super().__init__(
            f"approval required for request {held.get('request_id')} (held job {held.get('hold_job_id')}): {held.get('reason')}"
        )
        self.held = held
        view = held.get("view") or {}
        self.request_id: str = held.get("request_id", "")
        self.hold_job_id: str = held.get("hold_job_id", "")
        self.deadline: float = held.get("deadline", 0)
        self.reason: str = held.get("reason", "")
        self.mode: str = held.get("mode", "")
        self.risk: str = held.get("risk", "")
        self.code_sha256: str = held.get("code_sha256", "")
        self.code: str | None = view.get("code")
        self.task_objective: str | None = view.get("task_objective")
        self.findings: list[dict[str, Any]] = list(view.get("findings") or [])
        self.writes: list[dict[str, Any]] = list(view.get("writes") or [])


_BY_CODE: dict[str, type[PyexecError]] = {
    cls.code: cls
    for cls in (
        InvalidRequestError,
        RequestTooLargeError,
        RequestNotFoundError,
        RequestFinishedError,
        ThreadConflictError,
        UnauthorizedError,
        ForbiddenError,
        RateLimitedError,
        PayloadTooLargeError,
        TooManyStreamsError,
    )
}


def error_from_problem(status: int, body: Any) -> PyexecError:
    """The error of an API answer (problem+json), by its code."""
    problem = body if isinstance(body, dict) else {}
    cls = _BY_CODE.get(str(problem.get("code")), PyexecError)
    message = problem.get("detail") or problem.get("title") or f"HTTP {status}"
    return cls(str(message), status=status, problem=problem)
