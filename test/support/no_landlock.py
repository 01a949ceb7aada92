"""Runs a command as it would run on a Linux kernel without Landlock (tests of failing closed).

    python test/support/no_landlock.py COMMAND [ARGS...]

A seccomp filter makes landlock_create_ruleset, landlock_add_rule and landlock_restrict_self fail
with ENOSYS, as on a kernel built without CONFIG_SECURITY_LANDLOCK; the filter is inherited by
every process the command starts. Nothing in pyexec knows about it: the product code sees a
machine without Landlock.
"""
import ctypes
import os
import platform
import sys

ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}[platform.machine()]
LD, JEQ, RET = 0x20, 0x15, 0x06
ALLOW, ENOSYS = 0x7FFF0000, 0x00050000 | 38


class Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]


program = [
    (LD, 0, 0, 4),
    (JEQ, 1, 0, ARCH),
    (RET, 0, 0, ALLOW),
    (LD, 0, 0, 0),
    (JEQ, 3, 0, 444),
    (JEQ, 2, 0, 445),
    (JEQ, 1, 0, 446),
    (RET, 0, 0, ALLOW),
    (RET, 0, 0, ENOSYS),
]
filters = (Filter * len(program))(*[Filter(*p) for p in program])
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(Prog(len(program), filters)), 0, 0) != 0:
    sys.exit(f"no_landlock: cannot install the filter: {os.strerror(ctypes.get_errno())}")
os.execvp(sys.argv[1], sys.argv[1:])
