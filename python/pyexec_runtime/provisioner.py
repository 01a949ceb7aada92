"""The kernel provisioner of pyexec's kernelspecs: kernels forked from a warm zygote.

Named in each kernelspec (`metadata.kernel_provisioner.provisioner_name: pyexec-zygote-provisioner`)
and registered under the `jupyter_client.kernel_provisioners` entry point (python/pyproject.toml),
so jupyter_server starts, restarts, interrupts, culls and shuts down these kernels as it does any
other, and clients see ordinary kernels. It is jupyter_client's LocalProvisioner (connection file,
ports, environment) with one difference: `launch_kernel` asks a zygote (zygote.py, one per server
process and kernelspec) to fork the kernel instead of starting a new Python. The forked kernel runs
in its own process group: interrupt (SIGINT), terminate and kill go to the group, so they reach the
kernel and everything it started. It is not the server's child; a pidfd tells when it has ended.

Where a zygote cannot be had (no fork, or the zygote found a thread after its imports), the kernel
is started the ordinary way, with a warning in the server's log. A zygote that died is replaced on
the next launch; kernels it forked keep running.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import threading
from typing import Any

from jupyter_client.provisioning.local_provisioner import LocalProvisioner


class ForkedKernelProcess:
    """What LocalProvisioner expects of `self.process` (a Popen), for a process that is not ours."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except OSError:
            self._pidfd = None

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if self._pidfd is not None:
            ready, _, _ = select.select([self._pidfd], [], [], 0)
            if not ready:
                return None
        else:
            try:
                os.kill(self.pid, 0)
                return None
            except ProcessLookupError:
                pass
            except PermissionError:
                return None
        # The kernel ended; the zygote's kernel reaped it, so its status is not ours to read.
        self.returncode = 0
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        while self.poll() is None:
            if self._pidfd is not None:
                select.select([self._pidfd], [], [], timeout if timeout is not None else 1.0)
            else:
                threading.Event().wait(0.05)
        return self.returncode or 0

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Zygote:
    """A zygote process of this server, and the lock that serialises requests to it."""

    def __init__(self, python: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [python, "-m", "pyexec_runtime.zygote", "--role", "kernel"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=env,
            start_new_session=True,
        )
        self.lock = threading.Lock()
        line = self.proc.stdout.readline() if self.proc.stdout else b""
        hello = json.loads(line or b'{"ok": false, "error": "the zygote exited at start"}')
        if not hello.get("ok"):
            self.close()
            raise RuntimeError(f"zygote: {hello.get('error')}")
        self.info = hello

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, argv: list[str], env: dict[str, str], cwd: str | None) -> int:
        with self.lock:
            assert self.proc.stdin and self.proc.stdout
            self.proc.stdin.write((json.dumps({"op": "spawn", "argv": argv, "env": env, "cwd": cwd}) + "\n").encode())
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("zygote: no answer (it died)")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(f"zygote: {reply.get('error')}")
        return int(reply["pid"])

    def close(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(5)
        except Exception:  # noqa: BLE001
            pass


_zygotes: dict[tuple[str, str], Zygote] = {}
_zygotes_lock = threading.Lock()


def _zygote(python: str, key: str, env: dict[str, str]) -> Zygote:
    with _zygotes_lock:
        zygote = _zygotes.get((python, key))
        if zygote is None or not zygote.alive():
            if zygote is not None:
                zygote.close()
            zygote = _zygotes[(python, key)] = Zygote(python, env)
        return zygote


def _close_all() -> None:
    for zygote in list(_zygotes.values()):
        zygote.close()


import atexit  # noqa: E402 - next to what it registers

atexit.register(_close_all)


class ZygoteProvisioner(LocalProvisioner):
    """LocalProvisioner whose kernels are forked from a warm zygote (see the module's doc)."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        python = cmd[0] if cmd else sys.executable
        # The module and its arguments after `python -m pyexec_runtime.kernel`.
        if len(cmd) < 3 or cmd[1:3] != ["-m", "pyexec_runtime.kernel"] or not hasattr(os, "fork"):
            self.log.warning("pyexec: this kernel command cannot be forked from a zygote; starting it the ordinary way")
            return await super().launch_kernel(cmd, **kwargs)
        env = dict(kwargs.get("env") or os.environ)
        cwd = kwargs.get("cwd")
        key = self.kernel_spec.display_name if self.kernel_spec else "kernel"
        loop = asyncio.get_running_loop()
        pid = None
        for attempt in (1, 2):
            try:
                zygote = await loop.run_in_executor(None, _zygote, python, key, env)
                pid = await loop.run_in_executor(None, zygote.spawn, cmd[3:], env, str(cwd) if cwd else None)
                break
            except Exception as exc:  # noqa: BLE001 - a dead zygote is replaced once, then the ordinary way
                self.log.warning(
                    "pyexec: zygote unavailable (%s)%s", exc, "; starting a new one" if attempt == 1 else ""
                )
                with _zygotes_lock:
                    stale = _zygotes.pop((python, key), None)
                if stale:
                    stale.close()
        if pid is None:
            self.log.warning("pyexec: starting the kernel the ordinary way (no zygote)")
            return await super().launch_kernel(cmd, **kwargs)
        self.process = ForkedKernelProcess(pid)
        self.pid = pid
        self.pgid = pid
        self.cwd = cwd
        return self.connection_info

    def _kill_group(self) -> None:
        """Whatever the kernel left in its process group (subprocesses, multiprocessing) ends with it."""
        if self.pgid:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except OSError:
                pass

    async def cleanup(self, restart: bool = False) -> None:
        self._kill_group()
        await super().cleanup(restart)

    async def wait(self) -> int | None:
        """Waits for the kernel to end: on its pidfd, not LocalProvisioner's 100 ms polling."""
        process = self.process
        if isinstance(process, ForkedKernelProcess) and process._pidfd is not None:
            loop = asyncio.get_running_loop()
            done = loop.create_future()
            fd = process._pidfd
            loop.add_reader(fd, lambda: done.done() or done.set_result(None))
            try:
                if process.poll() is None:
                    await done
            finally:
                loop.remove_reader(fd)
        code = await super().wait()
        self._kill_group()
        return code
