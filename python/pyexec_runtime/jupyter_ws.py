"""The kernel websocket of pyexec's Jupyter servers, with TCP_NODELAY set.

jupyter_server (2.21 measured) never sets TCP_NODELAY on the kernel websocket, so a small reply
frame written right after another waits for the peer's delayed ACK (Nagle's algorithm): about 40 ms
on every execute round trip on Linux. Setting it on connect removes the wait.

Configured as `ServerApp.kernel_websocket_connection_class` in jupyter_server_config.py.
"""
from __future__ import annotations

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


class NoDelayWebsocketConnection(ZMQChannelsWebsocketConnection):
    def connect(self):  # type: ignore[override]
        self.websocket_handler.set_nodelay(True)
        return super().connect()
