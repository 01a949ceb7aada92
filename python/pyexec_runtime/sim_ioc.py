"""The simulated accelerator: a caproto soft IOC on loopback.

    python -m pyexec_runtime.sim_ioc --port 5064 [--ready-file F]

PVs (all floats unless noted):
  DEVICE:PV:SETPOINT, DEVICE:PV:READBACK (follows the setpoint), DEVICE:STATUS (int),
  BEAM:CURRENT (mA, slowly varying), MAG:QF1:CURRENT:SP / :RB, MAG:QD1:CURRENT:SP / :RB,
  MAG:HCM1:CURRENT:SP / :RB (magnet setpoints and readbacks, A).
The server binds 127.0.0.1 only; the port is per instance (EPICS_CA_SERVER_PORT), so parallel
tests do not collide.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

from caproto.server import PVGroup, pvproperty, run


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
    async def setpoint(self, instance, value):  # noqa: F811 - caproto's decorator pattern
        await self.readback.write(value)
        return value

    @qf1_sp.putter
    async def qf1_sp(self, instance, value):  # noqa: F811
        await self.qf1_rb.write(value)
        return value

    @qd1_sp.putter
    async def qd1_sp(self, instance, value):  # noqa: F811
        await self.qd1_rb.write(value)
        return value

    @hcm1_sp.putter
    async def hcm1_sp(self, instance, value):  # noqa: F811
        await self.hcm1_rb.write(value)
        return value

    @beam_current.scan(period=1.0)
    async def beam_current(self, instance, async_lib):  # noqa: F811
        await instance.write(500.0 + 2.0 * math.sin(time.time() / 60.0))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("EPICS_CA_SERVER_PORT", "5064")))
    parser.add_argument("--ready-file")
    args = parser.parse_args()
    os.environ["EPICS_CA_SERVER_PORT"] = str(args.port)
    os.environ["EPICS_CAS_INTF_ADDR_LIST"] = "127.0.0.1"
    os.environ.setdefault("EPICS_CAS_BEACON_ADDR_LIST", "127.0.0.1")
    os.environ["EPICS_CAS_AUTO_BEACON_ADDR_LIST"] = "NO"
    ioc = Accelerator(prefix="")

    async def startup(async_lib):
        if args.ready_file:
            with open(args.ready_file, "w") as fh:
                fh.write(str(os.getpid()))

    run(ioc.pvdb, interfaces=["127.0.0.1"], log_pv_names=False, startup_hook=startup)


if __name__ == "__main__":
    sys.exit(main())
