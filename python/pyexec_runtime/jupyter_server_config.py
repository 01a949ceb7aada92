"""jupyter_server configuration of pyexec's kernel servers (`jupyter server --config <this file>`).

The same file serves the servers pyexec spawns itself and the EPICS kernel image (deploy/kernel/).
Token, port, bind address and root folder come from the command line.
"""

# ruff: noqa: F821 - `get_config` is provided by traitlets when it loads this file
c = get_config()

# About 40 ms saved on every execute round trip (see jupyter_ws.py).
c.ServerApp.kernel_websocket_connection_class = "pyexec_runtime.jupyter_ws.NoDelayWebsocketConnection"

# Output is bounded by pyexec itself; the server must not drop IOPub messages silently
# ("IOPub data rate exceeded").
c.ZMQChannelsWebsocketConnection.iopub_data_rate_limit = 1.0e10
c.ZMQChannelsWebsocketConnection.iopub_msg_rate_limit = 1.0e6

# Pooled kernels idle by design between leases: never cull them, never shut the server down for
# inactivity.
c.MappingKernelManager.cull_idle_timeout = 0
c.MappingKernelManager.cull_busy = False
c.MappingKernelManager.cull_connected = False
c.ServerApp.shutdown_no_activity_timeout = 0

# Only pyexec's kernelspecs (`--KernelSpecManager.allowed_kernelspecs=<name>` per mode on the
# command line): no unguarded stock `python3` kernel on a server that runs pyexec's code.
c.ServerApp.kernel_spec_manager_class = "pyexec_runtime.jupyter_ws.AllowedOnlyKernelSpecManager"
c.KernelSpecManager.ensure_native_kernel = False

# A kernel that dies is restarted by the server; pyexec notices and recycles it.
c.KernelManager.autorestart = True
c.KernelManager.shutdown_wait_time = 2.0

# A kernel server, nothing else: no terminals, no browser, quiet logs.
c.ServerApp.terminals_enabled = False
c.ServerApp.jpserver_extensions = {"jupyter_server_terminals": False}
c.ServerApp.open_browser = False
c.ServerApp.log_level = "WARN"
