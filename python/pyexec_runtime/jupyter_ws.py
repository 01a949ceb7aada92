"""jupyter_server classes of pyexec's kernel servers, named in jupyter_server_config.py.

NoDelayWebsocketConnection: jupyter_server (2.21 measured) never sets TCP_NODELAY on the kernel
websocket, so a small reply frame written right after another waits for the peer's delayed ACK
(Nagle's algorithm): about 40 ms on every execute round trip on Linux. Setting it on connect
removes the wait. It also nudges a new kernel more often (see `nudge`).

AllowedOnlyKernelSpecManager: `KernelSpecManager.allowed_kernelspecs` only filters the listing;
jupyter_client still starts the stock `python3` kernel (ipykernel's built-in spec) by name. This
manager refuses to start any kernelspec that is not allowed, so a pyexec server runs only
pyexec's guarded kernels.
"""

from __future__ import annotations

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from tornado.ioloop import IOLoop


class NoDelayWebsocketConnection(ZMQChannelsWebsocketConnection):
    #: Seconds between the extra kernel_info requests of a nudge (below).
    nudge_interval = 0.03

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
