"""Linux Landlock through its three system calls (ctypes; no compiled code, no dependency).

    abi = landlock.abi_version()            # 0 when the kernel has no Landlock (or it is disabled)
    rs = landlock.Ruleset(fs=landlock.fs_rights(abi), net=NET_ALL, scoped=SCOPE_ALL)
    rs.allow_path("/usr", READ_EXEC)
    rs.allow_port(5064, NET_CONNECT_TCP)
    rs.restrict_self()                      # this thread, and every thread and process it starts

Landlock is unprivileged and stacks: each `restrict_self` adds a layer, and an access must be allowed
by every layer, so a process can narrow what it may do but never widen it. A right that a ruleset
does not *handle* stays governed by earlier layers only. The rules are checked when a file is opened
or a TCP socket binds or connects; what was opened before stays usable.

Landlock restricts the calling thread only: threads that run already stay outside the domain. Call
`restrict_self` while the process has a single thread (`thread_count()` says).

ABI history (linux/landlock.h): 1 files (5.13), 2 REFER (5.19), 3 TRUNCATE (6.2), 4 TCP bind and
connect (6.7), 5 IOCTL_DEV (6.10), 6 scoped signals and abstract Unix sockets (6.12), 7 audit logging
flags (6.15). Not covered by any ABI up to 7: UDP, and connecting to *pathname* Unix sockets
(pyexec_runtime.confine adds a seccomp filter for the latter).

The maintained PyPI bindings (`landlock` 1.0.0.dev5) cover files only; network rules and scoping
are what pyexec needs, so this module speaks to the kernel directly.
"""

from __future__ import annotations

import ctypes
import os

# System call numbers: the same on every architecture (asm-generic table).
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1 << 0
_RULE_PATH_BENEATH = 1
_RULE_NET_PORT = 2
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights, with the ABI that introduced them.
FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5

# Rights that make sense on a regular file (the others need a directory).
FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV

READ_EXEC = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
READ_ONLY = FS_READ_FILE | FS_READ_DIR
# Everything a private working folder needs; no EXECUTE (nothing written there runs as a program)
# and no device nodes.
READ_WRITE = (
    FS_READ_FILE
    | FS_READ_DIR
    | FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SYM
    | FS_MAKE_FIFO
    | FS_REFER
    | FS_TRUNCATE
)

# TCP rights (ABI 4).
NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
NET_ALL = NET_BIND_TCP | NET_CONNECT_TCP

# Scopes (ABI 6): the domain may not connect to abstract Unix sockets, nor signal processes,
# outside itself.
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1
SCOPE_ALL = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL


class LandlockError(OSError):
    """A Landlock system call failed (the message names which, and why)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def _call(name: str, number: int, *args: object) -> int:
    result = _syscall(number, *args)
    if result < 0:
        err = ctypes.get_errno()
        raise LandlockError(err, f"{name}: {os.strerror(err)}")
    return result


def abi_version() -> int:
    """The Landlock ABI the running kernel offers; 0 when Landlock is absent or disabled."""
    result = _syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return int(result) if result > 0 else 0


def fs_rights(abi: int) -> int:
    """Every filesystem right the ABI knows (what a ruleset should handle to deny by default)."""
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def thread_count() -> int:
    """Threads of this process (native ones included), from /proc."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def set_no_new_privs() -> None:
    """No set-user-id or file-capability gains across execve: required before restrict_self."""
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise LandlockError(err, f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(err)}")


class Ruleset:
    """One Landlock layer: the rights it handles (denied unless a rule allows them) and its rules."""

    def __init__(self, fs: int = 0, net: int = 0, scoped: int = 0) -> None:
        self.handled_fs = fs
        self.handled_net = net
        attr = _RulesetAttr(fs, net, scoped)
        # The kernel reads only the fields the ABI knows about: pass the shorter struct when no
        # scope is asked for, so ABI 4-5 kernels accept it.
        size = ctypes.sizeof(attr) if scoped else 16 if net else 8
        self._fd = _call(
            "landlock_create_ruleset",
            _SYS_CREATE_RULESET,
            ctypes.byref(attr),
            ctypes.c_size_t(size),
            ctypes.c_uint32(0),
        )

    def allow_path(self, path: str, access: int) -> bool:
        """Allows `access` beneath `path` (only file rights on a file). False when it does not exist."""
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return False
        try:
            if not os.path.isdir(path):
                access &= FS_FILE_RIGHTS
            attr = _PathBeneathAttr(access & self.handled_fs, fd)
            _call(
                f"landlock_add_rule({path!r})",
                _SYS_ADD_RULE,
                self._fd,
                _RULE_PATH_BENEATH,
                ctypes.byref(attr),
                ctypes.c_uint32(0),
            )
        finally:
            os.close(fd)
        return True

    def allow_port(self, port: int, access: int) -> None:
        attr = _NetPortAttr(access & self.handled_net, port)
        _call(
            f"landlock_add_rule(port {port})",
            _SYS_ADD_RULE,
            self._fd,
            _RULE_NET_PORT,
            ctypes.byref(attr),
            ctypes.c_uint32(0),
        )

    def restrict_self(self) -> None:
        """Enforces the layer on this thread (and all it starts later), then closes the ruleset."""
        set_no_new_privs()
        try:
            _call("landlock_restrict_self", _SYS_RESTRICT_SELF, self._fd, ctypes.c_uint32(0))
        finally:
            self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
