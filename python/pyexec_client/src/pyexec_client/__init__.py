"""Python client of pyexec's producer HTTP API.

    from pyexec_client import Client, ApprovalRequired

    with Client("http://127.0.0.1:8471", token="pxp_...") as client:
        sub = client.submit({"user_query": "...", "task_objective": "...", "execution_folder_name": "x"})
        for event in client.stream(sub.request_id):      # live output
            if event.type == "stdout":
                print(event.text, end="")
        response = client.wait(sub.request_id)            # raises ApprovalRequired when held

`AsyncClient` has the same methods as coroutines (and `stream` as an async iterator). The Osprey
adapter is `pyexec_client.osprey` (PythonExecutionRequest, PyexecPythonService).
"""

from ._async import AsyncClient
from ._errors import (
    ApprovalRequired,
    ForbiddenError,
    InvalidRequestError,
    PayloadTooLargeError,
    PyexecError,
    RateLimitedError,
    RequestFailed,
    RequestFinishedError,
    RequestNotFoundError,
    RequestTooLargeError,
    ThreadConflictError,
    TooManyStreamsError,
    UnauthorizedError,
    WaitTimeout,
)
from ._models import Event, RequestInfo, SubmitResult
from ._sync import Client

__all__ = [
    "ApprovalRequired",
    "AsyncClient",
    "Client",
    "Event",
    "ForbiddenError",
    "InvalidRequestError",
    "PayloadTooLargeError",
    "PyexecError",
    "RateLimitedError",
    "RequestFailed",
    "RequestFinishedError",
    "RequestInfo",
    "RequestNotFoundError",
    "RequestTooLargeError",
    "SubmitResult",
    "ThreadConflictError",
    "TooManyStreamsError",
    "UnauthorizedError",
    "WaitTimeout",
]
