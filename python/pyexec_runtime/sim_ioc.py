"""The simulated accelerator: a caproto soft IOC on loopback.

    python -m pyexec_runtime.sim_ioc --port 5064 [--read-only-port 5074] [--ready-file F]

PVs (all floats unless noted):
  DEVICE:PV:SETPOINT, DEVICE:PV:READBACK (follows the setpoint), DEVICE:STATUS (int),
  BEAM:CURRENT (mA, slowly varying), MAG:QF1:CURRENT:SP / :RB, MAG:QD1:CURRENT:SP / :RB,
  MAG:HCM1:CURRENT:SP / :RB (magnet setpoints and readbacks, A).
The server binds 127.0.0.1 only; the port is per instance (EPICS_CA_SERVER_PORT), so parallel
tests do not collide.

`--write-log FILE` appends every write request of the read-write endpoint to FILE, one JSON line
each ({"pv", "value", "t"}): tests count the writes each program made at the IOC itself.

`--read-only-port` serves the same PVs a second time on another port with access security: every
channel is granted READ only, and a write request is answered with ECA_NOWTACCESS. It plays the part
of a read-only Channel Access gateway: read-only kernels point at it, so a write that got past the
in-process guard is still refused at the IOC.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time

import caproto as ca
from caproto.asyncio.server import Context, VirtualCircuit
from caproto.server import PVGroup, pvproperty


class Accelerator(PVGroup):
    setpoint = pvproperty(name="DEVICE:PV:SETPOINT", value=10.0, precision=4)
    readback = pvproperty(name="DEVICE:PV:READBACK", value=10.0, precision=4, read_only=True)
    status = pvproperty(name="DEVICE:STATUS", value=1)
    beam_current = pvproperty(name="BEAM:CURRENT", value=500.0, precision=3, read_only=True)
    qf1_sp = pvproperty(name="MAG:QF1:CURRENT:SP", value=0.0, precision=4)
    qf1_rb = pvproperty(name="MAG:QF1:CURRENT:RB", value=0.0, precision=4, read_only=True)
    qd1_sp = pvproperty(name="MAG:QD1:CURRENT:SP", value=0.0, precision=4)
    qd1_rb = pvproperty(name="MAG:QD1:CURRENT:RB", value=0.0, precision=4, read_only=True)
    hcm1_sp = pvproperty(name="MAG:HCM1:CURRENT:SP", value=0.0, precision=4)
    hcm1_rb = pvproperty(name="MAG:HCM1:CURRENT:RB", value=0.0, precision=4, read_only=True)

    @setpoint.putter
    async def setpoint(self, instance, value):  # caproto's decorator pattern: the putter of the pvproperty above
        await self.readback.write(value)
        return value

    @qf1_sp.putter
    async def qf1_sp(self, instance, value):
        await self.qf1_rb.write(value)
        return value

    @qd1_sp.putter
    async def qd1_sp(self, instance, value):
        await self.qd1_rb.write(value)
        return value

    @hcm1_sp.putter
    async def hcm1_sp(self, instance, value):
        await self.hcm1_rb.write(value)
        return value

    @beam_current.scan(period=1.0)
    async def beam_current(self, instance, async_lib):
        await instance.write(500.0 + 2.0 * math.sin(time.time() / 60.0))


class ReadOnlyCircuit(VirtualCircuit):
    """A circuit of the read-only endpoint: READ access on every channel, writes refused."""

    async def _process_command(self, command):
        if isinstance(command, (ca.WriteRequest, ca.WriteNotifyRequest)):
            cid = self.circuit.channels_sid[command.sid].cid
            return [
                ca.ErrorResponse(command, cid, status=ca.CAStatus.ECA_NOWTACCESS, error_message="read-only endpoint")
            ]
        to_send = await super()._process_command(command)
        return [
            ca.AccessRightsResponse(cid=c.cid, access_rights=ca.AccessRights.READ)
            if isinstance(c, ca.AccessRightsResponse)
            else c
            for c in to_send or []
        ]


class WriteLogCircuit(VirtualCircuit):
    """A circuit of the read-write endpoint that appends every write request it receives to a log
    (one JSON line: pv, value, time), so a test can count the writes each program made."""

    log_path: str | None = None

    async def _process_command(self, command):
        if self.log_path and isinstance(command, (ca.WriteRequest, ca.WriteNotifyRequest)):
            chan = self.circuit.channels_sid[command.sid]
            value = [v.decode() if isinstance(v, bytes) else v for v in list(command.data)]
            line = json.dumps(
                {"pv": chan.name, "value": value[0] if len(value) == 1 else value, "t": time.time()}, default=float
            )
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        return await super()._process_command(command)


class WriteLogContext(Context):
    CircuitClass = WriteLogCircuit


class ReadOnlyContext(Context):
    CircuitClass = ReadOnlyCircuit

    @property
    def startup_methods(self):
        # The read-write context already runs the PV groups' scans; running them twice would
        # double every simulated update.
        return {}


async def serve(
    pvdb: dict, port: int, read_only_port: int | None, ready_file: str | None, write_log: str | None = None
) -> None:
    WriteLogCircuit.log_path = write_log
    contexts = [(WriteLogContext if write_log else Context)(pvdb, ["127.0.0.1"])]
    contexts[0].ca_server_port = port
    if read_only_port:
        ro = ReadOnlyContext(pvdb, ["127.0.0.1"])
        ro.ca_server_port = read_only_port
        contexts.append(ro)
    started: list[int] = []

    async def startup(async_lib):
        started.append(1)
        if ready_file and len(started) == len(contexts):
            with open(ready_file, "w") as fh:
                fh.write(str(os.getpid()))

    await asyncio.gather(*(ctx.run(log_pv_names=False, startup_hook=startup) for ctx in contexts))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("EPICS_CA_SERVER_PORT", "5064")))
    parser.add_argument("--read-only-port", type=int, default=None)
    parser.add_argument("--ready-file")
    parser.add_argument("--write-log", help="append every write request to this file (JSON lines), for tests")
    args = parser.parse_args()
    os.environ["EPICS_CA_SERVER_PORT"] = str(args.port)
    os.environ["EPICS_CAS_INTF_ADDR_LIST"] = "127.0.0.1"
    os.environ.setdefault("EPICS_CAS_BEACON_ADDR_LIST", "127.0.0.1")
    os.environ["EPICS_CAS_AUTO_BEACON_ADDR_LIST"] = "NO"
    ioc = Accelerator(prefix="")
    try:
        asyncio.run(serve(ioc.pvdb, args.port, args.read_only_port, args.ready_file, args.write_log))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
