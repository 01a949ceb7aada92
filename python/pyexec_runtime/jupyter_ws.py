"""jupyter_server classes of pyexec's kernel servers, named in jupyter_server_config.py.

NoDelayWebsocketConnection: jupyter_server (2.21 measured) never sets TCP_NODELAY on the kernel
websocket, so a small reply frame written right after another waits for the peer's delayed ACK
(Nagle's algorithm): about 40 ms on every execute round trip on Linux. Setting it on connect
removes the wait. It also nudges a new kernel more often (see `nudge`), and makes the server's
sockets to a kernel that is not listening yet try again sooner (see `_fast_reconnect`).

AllowedOnlyKernelSpecManager: `KernelSpecManager.allowed_kernelspecs` only filters the listing;
jupyter_client still starts the stock `python3` kernel (ipykernel's built-in spec) by name. This
manager refuses to start any kernelspec that is not allowed, so a pyexec server runs only
pyexec's guarded kernels.
"""

from __future__ import annotations

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado.ioloop import IOLoop

#: ZeroMQ's reconnect interval (ms) of the server's sockets to its kernels, then its back-off cap.
RECONNECT_IVL_MS = 10
RECONNECT_IVL_MAX_MS = 1000


def _fast_reconnect(kernel_manager: object) -> None:
    """The server connects to a new kernel's ports as soon as it has launched it, before the kernel
    has bound them; ZeroMQ tries again only after its reconnect interval, 100 ms by default, which a
    forked kernel ready in ~100 ms waited out in about one start in three (its first kernel_info
    reply came ~100 ms after the kernel was up, by the kernel's own clock). Set on the kernel
    manager's context: the default of every socket made from it afterwards."""
    import zmq

    context = getattr(kernel_manager, "context", None)
    if context is None or context.sockopts.get(zmq.RECONNECT_IVL) == RECONNECT_IVL_MS:
        return
    context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    context.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)


class NoDelayWebsocketConnection(ZMQChannelsWebsocketConnection):
    #: Seconds between the extra kernel_info requests of a nudge (below).
    nudge_interval = 0.03

    async def prepare(self):  # type: ignore[override]
        _fast_reconnect(self.kernel_manager)
        return await super().prepare()

    def connect(self):  # type: ignore[override]
        self.websocket_handler.set_nodelay(True)
        return super().connect()

    def nudge(self):  # type: ignore[override]
        """jupyter_server's nudge, with kernel_info requests every 30 ms instead of every 500 ms.

        The websocket opens once the kernel answers a kernel_info request *and* an IOPub message
        reaches the server's subscription. A fresh kernel's first IOPub messages often go out before
        that subscription is in place (ZeroMQ's slow joiner) and are lost; jupyter_server asks again
        only every 0.5 s, so a forked kernel ready in ~150 ms waited ~650 ms (measured in
        bench/fresh-kernels.bench.ts). A transient shell channel of our own asks more often: any
        reply makes the kernel publish its status on IOPub, which is all the nudge waits for."""
        done = super().nudge()
        if done.done():
            return done
        try:
            shell = self.kernel_manager.connect_shell()
        except Exception:  # noqa: BLE001 - the ordinary nudge still runs
            return done
        loop = IOLoop.current()

        def ping() -> None:
            if done.done() or shell.closed():
                return
            self.session.send(shell, "kernel_info_request")
            loop.call_later(self.nudge_interval, ping)

        def close(_: object = None) -> None:
            if not shell.closed():
                shell.close()

        loop.call_later(self.nudge_interval, ping)
        done.add_done_callback(close)
        return done


class AllowedOnlyKernelSpecManager(KernelSpecManager):
    def get_kernel_spec(self, kernel_name: str):  # type: ignore[override]
        if self.allowed_kernelspecs and kernel_name not in self.allowed_kernelspecs:
            raise NoSuchKernel(kernel_name)
        return super().get_kernel_spec(kernel_name)
