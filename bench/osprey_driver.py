"""Drives Osprey 0.11.5's Python executor service for bench/osprey-compare.bench.ts.

Runs in its own virtualenv (.bench-venv/osprey, never the project's .venv). One process for the
whole bench: the service is built and its LangGraph compiled once, then each line read on stdin is
one request, answered by one line on stdout, so a measured call is Osprey's request path only (not
this interpreter's start or its imports).

stdin, one JSON object a line: {"code": "<python>", "user_query": ..., "task_objective": ...,
                               "execution_folder_name": ...} (the last three optional)
stdout, one JSON object a line: {"ok": true, "ms": <float>, "execute_ms": <float>, "results": {...}}
                                or {"ok": false, "ms": <float>, "error": "<text>"}
`ms` is the whole `service.ainvoke`; `execute_ms` the part spent in the executor's `execute_code`
(local: a new Python running Osprey's wrapper, which initialises Osprey's registry first), timed
by a wrapper around that method that changes nothing else; `child_cpu_ms` the CPU (user + system)
of the child processes that ended during the call (local: that new Python).
The first line written is {"ready": true, "version": "<osprey-framework version>"} (or
{"ready": false, "error": ...} and exit 1).

The generator is Osprey's own MockCodeGenerator, set to return the request's code. It is put in
place the way Osprey's own integration tests do it (tests/integration/test_python_executor_service.py
patches generation.node.create_code_generator): at 0.11.5 the factory builds
MockCodeGenerator(model_config=...) and the mock ignores model_config, so
`execution.generators.mock.behavior` in config.yml leaves it unconfigured (ValueError at the first
call). Everything else is Osprey's: its config loader (CONFIG_FILE), its graph (generator ->
analyzer -> approval -> executor), its static analysis, its approval policy (off), its executors.

Usage: python bench/osprey_driver.py <work-dir> [local|container]
(the dir receives config.yml and _agent_data/). Osprey's executor node reads the method from the
global configuration (get_full_configuration()), not from the LangGraph config, so a method is a
process. container: OSPREY_JUPYTER_HOST / OSPREY_JUPYTER_PORT name the Jupyter server (no token),
OSPREY_KERNEL_NAME the kernel of the read-only mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path


def write(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


CONFIG = """\
project_root: {root}
file_paths:
  agent_data_dir: {root}/_agent_data
  executed_python_scripts_dir: executed_scripts
control_system:
  type: mock
  writes_enabled: false
approval:
  global_mode: disabled
  capabilities:
    python_execution:
      enabled: false
      mode: disabled
    memory:
      enabled: false
python_executor:
  max_generation_retries: 1
  max_execution_retries: 1
  execution_timeout_seconds: 120
execution:
  execution_method: {method}
  python_env_path: {python}
  code_generator: mock
  generators:
    mock:
      behavior: success
  modes:
    read_only:
      kernel_name: {kernel_name}
      gateway: read_only
      allows_writes: false
      environment:
        EPICS_CA_AUTO_ADDR_LIST: "NO"
        EPICS_EXECUTION_MODE: read_only
    write_access:
      kernel_name: python3-epics-write
      gateway: write_access
      allows_writes: true
      requires_approval: true
      environment:
        EPICS_CA_AUTO_ADDR_LIST: "NO"
        EPICS_EXECUTION_MODE: write_access
  container:
    jupyter_host: {jupyter_host}
    jupyter_port: {jupyter_port}
services:
  jupyter:
    containers:
      read:
        name: jupyter-read
        hostname: {jupyter_host}
        port_host: {jupyter_port}
        port_container: {jupyter_port}
        execution_modes: [read_only]
      write:
        name: jupyter-write
        hostname: {jupyter_host}
        port_host: {jupyter_port}
        port_container: {jupyter_port}
        execution_modes: [write_access]
"""


async def main() -> int:
    root = Path(sys.argv[1]).resolve()
    method = sys.argv[2] if len(sys.argv) > 2 else "local"
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_text(
        CONFIG.format(
            root=root,
            method=method,
            python=sys.executable,
            kernel_name=os.environ.get("OSPREY_KERNEL_NAME", "python3-epics-readonly"),
            jupyter_host=os.environ.get("OSPREY_JUPYTER_HOST", "127.0.0.1"),
            jupyter_port=os.environ.get("OSPREY_JUPYTER_PORT", "8088"),
        )
    )
    os.environ["CONFIG_FILE"] = str(root / "config.yml")
    os.environ.setdefault("OSPREY_QUIET", "1")
    os.chdir(root)
    try:
        from osprey.services.python_executor import PythonExecutionRequest, PythonExecutorService
        from osprey.services.python_executor.generation import MockCodeGenerator
        from osprey.services.python_executor.generation import node as generation_node

        current = {"code": ""}

        def mock_factory(config=None):  # noqa: ARG001 - the factory's signature
            gen = MockCodeGenerator()
            gen.set_code(current["code"])
            return gen

        generation_node.create_code_generator = mock_factory

        from osprey.services.python_executor.execution import node as execution_node

        spent = {"ms": 0.0}

        def timed(execute_code):
            async def run(self, *args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return await execute_code(self, *args, **kwargs)
                finally:
                    spent["ms"] += (time.perf_counter() - t0) * 1000

            return run

        for cls in (execution_node.LocalCodeExecutor, execution_node.ContainerCodeExecutor):
            cls.execute_code = timed(cls.execute_code)

        if method == "container":
            # Osprey's container deployment mounts the host's executed_scripts folder at
            # /home/jovyan/work/executed_scripts and the wrapper chdirs to the mapped path; the results
            # are then read from the host folder. With no Docker engine here the Jupyter server runs
            # on the host, so the mount is the identity: the same path on both sides.
            from osprey.services.python_executor.execution.wrapper import ExecutionWrapper

            ExecutionWrapper._convert_host_path_to_container_path = lambda self, host_path: str(host_path)
        service = PythonExecutorService()
        service.get_compiled_graph()
    except Exception as e:  # noqa: BLE001 - reported to the bench, which says what blocked
        write({"ready": False, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})
        return 1
    write({"ready": True, "version": metadata.version("osprey-framework")})

    n = 0
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return 0
        msg = json.loads(line)
        n += 1
        current["code"] = msg["code"]
        request = PythonExecutionRequest(
            user_query=msg.get("user_query", "trivial read-only request"),
            task_objective=msg.get("task_objective", "compute a trivial result"),
            execution_folder_name=msg.get("execution_folder_name", "bench"),
        )
        config = {
            "configurable": {
                **_configurable(),
                "thread_id": f"bench_{n}",
                "checkpoint_ns": "python_executor",
            }
        }
        spent["ms"] = 0.0
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        try:
            result = await service.ainvoke(request, config=config)
            ms = (time.perf_counter() - t) * 1000
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            child_cpu_ms = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime) * 1000
            write(
                {
                    "ok": True,
                    "ms": ms,
                    "execute_ms": spent["ms"],
                    "child_cpu_ms": child_cpu_ms,
                    "results": result.execution_result.results,
                }
            )
        except Exception as e:  # noqa: BLE001
            ms = (time.perf_counter() - t) * 1000
            write({"ok": False, "ms": ms, "error": f"{type(e).__name__}: {e}"[:2000]})


def _configurable() -> dict:
    from osprey.utils.config import get_full_configuration

    return dict(get_full_configuration())


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
