"""Exception classes the runtime raises. The runner classifies outcomes by these classes, never by text."""


class PyexecRefusal(PermissionError):
    """A safety refusal: the operation is not allowed in this execution. Terminal, never retried."""

    error_type = "refused"


class WriteRefused(PyexecRefusal):
    """A control-system write (or process spawn) attempted in a read-only execution."""

    error_type = "write_blocked"


class ChannelLimitsViolation(PyexecRefusal):
    """A write outside the channel limits database (min, max, max_step, writable, unlisted)."""

    error_type = "limits_violation"


# Every refusal raised in this process, in order; the runner reports them even if user code
# caught the exception and went on.
REFUSALS: list[dict] = []


def record_refusal(exc: PyexecRefusal) -> PyexecRefusal:
    REFUSALS.append({"error_type": exc.error_type, "error_name": type(exc).__name__, "message": str(exc)})
    return exc


def refusal_outcome() -> dict:
    """What a run's metadata becomes when anything was refused (the first refusal names it), whatever
    the code did next: a refusal counts even when the code caught it and went on. Empty when none was."""
    if not REFUSALS:
        return {}
    first = REFUSALS[0]
    return {
        "success": False,
        "error_kind": "refused",
        "error_type": first["error_type"],
        "error_name": first["error_name"],
        "error": first["message"],
    }


class RequestInputError(ValueError):
    """The request's data cannot be decoded here (nested deeper than the decoder goes, malformed):
    the request's own error, terminal, not a failure of the kernel to retry."""

    error_type = "request_input"


def decode_request_json(text: str):
    """json.loads for request data, raising RequestInputError for what cannot be decoded."""
    import json

    try:
        return json.loads(text)
    except (RecursionError, ValueError) as exc:
        raise RequestInputError(f"the request's data cannot be decoded: {type(exc).__name__}: {exc}") from None
