"""jupyter_server classes of pyexec's kernel servers, named in jupyter_server_config.py.

NoDelayWebsocketConnection: jupyter_server (2.21 measured) never sets TCP_NODELAY on the kernel
websocket, so a small reply frame written right after another waits for the peer's delayed ACK
(Nagle's algorithm): about 40 ms on every execute round trip on Linux. Setting it on connect
removes the wait.

AllowedOnlyKernelSpecManager: `KernelSpecManager.allowed_kernelspecs` only filters the listing;
jupyter_client still starts the stock `python3` kernel (ipykernel's built-in spec) by name. This
manager refuses to start any kernelspec that is not allowed, so a pyexec server runs only
pyexec's guarded kernels.
"""
from __future__ import annotations

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


class NoDelayWebsocketConnection(ZMQChannelsWebsocketConnection):
    def connect(self):  # type: ignore[override]
        self.websocket_handler.set_nodelay(True)
        return super().connect()


class AllowedOnlyKernelSpecManager(KernelSpecManager):
    def get_kernel_spec(self, kernel_name: str):  # type: ignore[override]
        if self.allowed_kernelspecs and kernel_name not in self.allowed_kernelspecs:
            raise NoSuchKernel(kernel_name)
        return super().get_kernel_spec(kernel_name)
