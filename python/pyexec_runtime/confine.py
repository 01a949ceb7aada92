"""What a kernel (or a local run) may touch, enforced by the operating system before any user code.

    record = confine.confine_process(mode, bind_ports=[...], write_dirs=[execution_root])
    ...
    confine.narrow_to(folder)      # once a run starts: only this request's folder stays writable

The in-process guard (guard.py) gives polite code a clear refusal; this is the boundary that code in
the same process cannot undo. Three layers, applied in this order while the process has one thread
(Landlock binds the calling thread only, so a thread started earlier would stay outside; a fork or
a thread started later inherits everything):

1. Capabilities: the bounding, ambient, effective, permitted and inheritable sets are emptied, so a
   kernel run as root has no CAP_NET_RAW (raw packets past the TCP rules), no CAP_DAC_OVERRIDE, and
   no way back (no_new_privs: set-user-id programs gain nothing either).
2. seccomp: `socket()` only for AF_INET, AF_INET6 and AF_NETLINK (no pathname or abstract Unix
   sockets: Landlock up to ABI 7 does not govern connecting to a pathname socket; `socketpair` still
   works), no io_uring (its operations bypass the socket() filter), and a process of another
   architecture or ABI (int 0x80, x32) is killed.
3. Landlock: TCP connect only to the mode's Channel Access ports (EPICS_CA_SERVER_PORT, the ports in
   EPICS_CA_ADDR_LIST / EPICS_CA_NAME_SERVERS, and PYEXEC_CONNECT_PORTS), TCP bind only to the
   kernel's own ZMQ ports; files: read and execute the Python prefixes and system libraries, read a
   short list of system files, its own /proc/<pid> and a few /proc and /sys files, read and write a
   private temporary folder and `write_dirs`; nothing else (not the Jupyter runtime folder, the
   state folder, config.yml, the repository, other processes' /proc entries); no signals to, and no
   abstract Unix sockets of, processes outside the domain.

Landlock's port rules name ports, not addresses: a kernel allowed port 5064 may connect to 5064 on any
host. On one machine the read-only and the read-write endpoints are different ports; across machines
the network policy of the deployment (a CA gateway per mode) decides the hosts. UDP is not governed
(Channel Access writes need a TCP circuit; UDP carries name searches and beacons only).

`PYEXEC_CONFINEMENT` selects the method: `landlock` (the default: refuse to start without ABI >= 6) or
`deployment` (the deployment isolates the kernel, e.g. a container that reaches only a CA gateway:
nothing is applied, and the kernel says so loudly on stderr and in its run records).
"""

from __future__ import annotations

import ctypes
import os
import platform
import site
import sys
from typing import Any

from . import landlock

REQUIRED_ABI = 6
METHODS = ("landlock", "deployment")

# System files the scientific stack reads (name resolution, time zones, users, TLS roots, fonts).
_ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "hosts",
    "host.conf",
    "nsswitch.conf",
    "resolv.conf",
    "gai.conf",
    "passwd",
    "group",
    "mime.types",
    "ssl",
    "ca-certificates",
    "fonts",
    "protocols",
    "services",
    "os-release",
    "matplotlibrc",
)
_PROC_FILES = ("cpuinfo", "meminfo", "stat", "loadavg", "uptime", "version", "sys/kernel/osrelease")
_SYS_DIRS = ("/sys/devices/system/cpu", "/sys/fs/cgroup")
_SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
_DEVICES_RW = ("/dev/null", "/dev/zero", "/dev/full")
_DEVICES_R = ("/dev/urandom", "/dev/random")


class ConfinementError(RuntimeError):
    """The process cannot be confined as its mode requires: it must not run user code."""


_state: dict[str, Any] = {}


# --- what the machine offers ------------------------------------------------------------------


def probe() -> dict[str, Any]:
    """The Landlock ABI and what pyexec's policy needs of it (for doctor, readiness, start-up)."""
    abi = landlock.abi_version()
    return {
        "landlock_abi": abi,
        "required_abi": REQUIRED_ABI,
        "tcp_rules": abi >= 4,
        "scoped_signals_and_abstract_sockets": abi >= 6,
        "seccomp": _seccomp_arch() is not None,
        "arch": platform.machine(),
        "missing": missing_features(abi),
    }


def missing_features(abi: int) -> list[str]:
    missing = []
    if abi < 1:
        missing.append("Landlock (Linux >= 5.13 with CONFIG_SECURITY_LANDLOCK and 'landlock' in the lsm= list)")
    if abi < 4:
        missing.append("Landlock TCP bind/connect rules (ABI 4, Linux 6.7)")
    if abi < 6:
        missing.append("Landlock signal and abstract Unix socket scoping (ABI 6, Linux 6.12)")
    if _seccomp_arch() is None:
        missing.append(f"pyexec's seccomp filter for this architecture ({platform.machine()}: x86_64 and aarch64 only)")
    return missing


# --- the policy -------------------------------------------------------------------------------


def _port(text: str) -> int | None:
    try:
        port = int(text)
    except ValueError:
        return None
    return port if 0 < port < 65536 else None


def connect_ports(env: dict[str, str] | os._Environ[str] = os.environ) -> list[int]:
    """The TCP ports a process of this mode may connect to: its Channel Access endpoints."""
    default = _port(env.get("EPICS_CA_SERVER_PORT", "") or "5064") or 5064
    ports = {default}
    for key in ("EPICS_CA_ADDR_LIST", "EPICS_CA_NAME_SERVERS"):
        for entry in (env.get(key) or "").split():
            host, sep, port = entry.rpartition(":")
            if sep and host and (p := _port(port)):
                ports.add(p)
    for entry in (env.get("PYEXEC_CONNECT_PORTS") or "").replace(",", " ").split():
        if p := _port(entry):
            ports.add(p)
    return sorted(ports)


def read_paths(env: dict[str, str] | os._Environ[str] = os.environ) -> list[tuple[str, int]]:
    """Paths readable (and, for programs and libraries, executable) inside the domain."""
    paths: list[tuple[str, int]] = []
    prefixes = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    prefixes |= {os.path.realpath(p) for p in prefixes}
    try:
        prefixes |= {os.path.realpath(p) for p in site.getsitepackages()}
    except AttributeError:
        pass
    prefixes |= {os.path.realpath(p) for p in (env.get("PYTHONPATH") or "").split(os.pathsep) if p}
    prefixes |= {os.path.dirname(os.path.realpath(sys.executable))}
    paths += [(p, landlock.READ_EXEC) for p in sorted(prefixes)]
    paths += [(d, landlock.READ_EXEC) for d in _SYSTEM_DIRS]
    paths += [(os.path.join("/etc", f), landlock.READ_ONLY) for f in _ETC_FILES]
    paths += [(f"/proc/{os.getpid()}", landlock.READ_ONLY)]
    paths += [(os.path.join("/proc", f), landlock.READ_ONLY) for f in _PROC_FILES]
    paths += [(d, landlock.READ_ONLY) for d in _SYS_DIRS]
    paths += [(d, landlock.FS_READ_FILE | landlock.FS_WRITE_FILE) for d in _DEVICES_RW]
    paths += [(d, landlock.FS_READ_FILE) for d in _DEVICES_R]
    # matplotlib's configuration and font cache: read only (a writable matplotlibrc would choose
    # the backend module of the next kernel).
    home = os.path.expanduser("~")
    mpl = [env["MPLCONFIGDIR"]] if env.get("MPLCONFIGDIR") else []
    mpl += [
        os.path.join(env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), "matplotlib"),
        os.path.join(env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"), "matplotlib"),
    ]
    paths += [(p, landlock.READ_ONLY) for p in mpl]
    paths += [(p, landlock.READ_EXEC) for p in (env.get("PYEXEC_READ_PATHS") or "").split(os.pathsep) if p]
    return paths


# --- capabilities and seccomp ------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> None:
    """Empties every capability set; the bounding set too when the process may (CAP_SETPCAP)."""
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
            last = int(fh.read())
    except OSError:
        last = 63
    for cap in range(last + 1):
        if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 1:  # EPERM: had none
            err = ctypes.get_errno()
            raise ConfinementError(f"prctl(PR_CAPBSET_DROP, {cap}): {os.strerror(err)}")
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), data) != 0:
        err = ctypes.get_errno()
        raise ConfinementError(f"capset: {os.strerror(err)}")


# (AUDIT_ARCH, socket, io_uring_setup, io_uring_enter, io_uring_register) per machine.
_ARCH = {
    "x86_64": (0xC000003E, 41, 425, 426, 427),
    "aarch64": (0xC00000B7, 198, 425, 426, 427),
}
_AF_INET, _AF_INET6, _AF_NETLINK = 2, 10, 16


def _seccomp_arch() -> tuple[int, int, int, int, int] | None:
    return _ARCH.get(platform.machine())


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _seccomp_program() -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k), jumps resolved from labels."""
    arch = _seccomp_arch()
    if arch is None:
        raise ConfinementError(f"no seccomp filter for {platform.machine()}")
    audit_arch, nr_socket, *nr_uring = arch
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    kill, allow = 0x80000000, 0x7FFF0000
    eperm, eafnosupport = 0x00050000 | 1, 0x00050000 | 97
    # Each entry: (code, true-label, false-label, k); labels are names or None (next instruction).
    prog: list[tuple[int, str | None, str | None, int]] = [
        (ld, None, None, 4),  # seccomp_data.arch
        (jeq, "native", None, audit_arch),
        (ret, None, None, kill),
        ("native", None, None, 0),  # a label
        (ld, None, None, 0),  # seccomp_data.nr
        (jge, "deny", None, 0x40000000),  # x32 system calls
        *[(jeq, "deny", None, n) for n in nr_uring],
        (jeq, "socket", None, nr_socket),
        (ret, None, None, allow),
        ("socket", None, None, 0),
        (ld, None, None, 16),  # args[0], low 32 bits (little-endian): the address family
        (jeq, "allow", None, _AF_INET),
        (jeq, "allow", None, _AF_INET6),
        (jeq, "allow", None, _AF_NETLINK),
        (ret, None, None, eafnosupport),
        ("allow", None, None, 0),
        (ret, None, None, allow),
        ("deny", None, None, 0),
        (ret, None, None, eperm),
    ]
    labels: dict[str, int] = {}
    code: list[tuple[int, str | None, str | None, int]] = []
    for entry in prog:
        if isinstance(entry[0], str):
            labels[entry[0]] = len(code)
        else:
            code.append(entry)  # type: ignore[arg-type]
    out = []
    for i, (op, jt, jf, k) in enumerate(code):
        t = labels[jt] - i - 1 if jt else 0
        f = labels[jf] - i - 1 if jf else 0
        out.append((op, t, f, k))
    return out


def install_seccomp() -> None:
    program = _seccomp_program()
    filters = (_SockFilter * len(program))(*[_SockFilter(*p) for p in program])
    fprog = _SockFprog(len(program), filters)
    landlock.set_no_new_privs()
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise ConfinementError(f"prctl(PR_SET_SECCOMP): {os.strerror(err)}")


# --- applying it -------------------------------------------------------------------------------


def method(env: dict[str, str] | os._Environ[str] = os.environ) -> str:
    chosen = (env.get("PYEXEC_CONFINEMENT") or "landlock").strip()
    if chosen not in METHODS:
        raise ConfinementError(f"PYEXEC_CONFINEMENT={chosen!r}: expected one of {', '.join(METHODS)}")
    return chosen


def _layer(
    abi: int, read: list[tuple[str, int]], write_dirs: list[str], net: int = 0, scoped: int = 0
) -> landlock.Ruleset:
    ruleset = landlock.Ruleset(fs=landlock.fs_rights(abi), net=net, scoped=scoped)
    for path, access in read:
        ruleset.allow_path(path, access)
    for path in write_dirs:
        _allow_writable(ruleset, path)
    return ruleset


def _allow_writable(ruleset: landlock.Ruleset, path: str) -> None:
    """Makes `path` writable in `ruleset`; closes the ruleset and raises when it does not exist."""
    if not ruleset.allow_path(path, landlock.READ_WRITE):
        ruleset.close()
        raise ConfinementError(f"cannot allow {path}: it does not exist")


def confine_process(
    mode: str,
    *,
    bind_ports: list[int] | tuple[int, ...] = (),
    write_dirs: list[str] | tuple[str, ...] = (),
    env: dict[str, str] | os._Environ[str] = os.environ,
) -> dict[str, Any]:
    """Confines this process (and everything it starts) for `mode`; returns what is in force.

    Raises ConfinementError when it cannot: the caller must exit without running user code.
    """
    if _state.get("record"):
        raise ConfinementError("this process is confined already")
    chosen = method(env)
    if chosen == "deployment":
        record: dict[str, Any] = {"method": "deployment", "mode": mode, "landlock_abi": landlock.abi_version()}
        sys.stderr.write(
            "pyexec: WARNING: PYEXEC_CONFINEMENT=deployment: this process is NOT confined by pyexec; "
            "the deployment must isolate it (a CA gateway per mode, network policies)\n"
        )
        _state["record"] = record
        return record
    abi = landlock.abi_version()
    missing = missing_features(abi)
    if missing:
        raise ConfinementError(
            "cannot confine the kernel: this system lacks "
            + "; ".join(missing)
            + ". Run on Linux >= 6.12 with Landlock enabled, or set execution.confinement: deployment "
            "where the deployment isolates kernels itself."
        )
    threads = landlock.thread_count()
    if threads != 1:
        raise ConfinementError(f"{threads} threads run already: confinement must come before any thread starts")
    read = read_paths(env)
    writable = [os.path.realpath(d) for d in write_dirs]
    ports = connect_ports(env)
    try:
        drop_capabilities()
        install_seccomp()
        ruleset = _layer(abi, read, writable, net=landlock.NET_ALL, scoped=landlock.SCOPE_ALL)
        for port in ports:
            ruleset.allow_port(port, landlock.NET_CONNECT_TCP)
        for port in bind_ports:
            ruleset.allow_port(int(port), landlock.NET_BIND_TCP)
        if bind_ports:
            # Port 0: an ephemeral port the kernel picks (ipykernel's pipe that carries the output of
            # the kernel's subprocesses). A listener reaches nothing: connecting is what is governed.
            ruleset.allow_port(0, landlock.NET_BIND_TCP)
        ruleset.restrict_self()
    except OSError as exc:
        raise ConfinementError(f"cannot confine the process: {exc}") from exc
    record = {
        "method": "landlock",
        "mode": mode,
        "landlock_abi": abi,
        "connect_ports": ports,
        "bind_ports": sorted(int(p) for p in bind_ports),
        "writable": writable,
        "seccomp": True,
        "capabilities": "none",
        "layers": 1,
    }
    _state.update(record=record, read=read, abi=abi)
    return record


def prepare_narrowing(keep: list[str] | tuple[str, ...] = ()) -> None:
    """Builds the ruleset of the next narrow_to layer ahead of time (every read rule, and `keep`
    writable), so that narrow_to only adds the run's folder: in a confined process each of the
    read rules' opens costs ~0.1 ms (measured: ~6 ms a layer). A no-op without Landlock in force."""
    record = _state.get("record")
    if not record or record["method"] != "landlock" or _state.get("next_layer"):
        return
    keep_paths = [os.path.realpath(p) for p in keep]
    _state["next_layer"] = (_layer(_state["abi"], _state["read"], keep_paths), keep_paths)


def narrow_to(folder: str, keep: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """Adds a layer in which only `folder` (and `keep`, e.g. the private temporary folder) is
    writable: a run cannot touch another request's folder. A no-op without Landlock in force."""
    record = _state.get("record")
    if not record or record["method"] != "landlock":
        return dict(record or {"method": "none"})
    writable = [os.path.realpath(p) for p in (folder, *keep)]
    prepared = _state.pop("next_layer", None)
    try:
        if prepared and prepared[1] == writable[1:]:
            ruleset = prepared[0]
            _allow_writable(ruleset, writable[0])
        else:
            if prepared:
                prepared[0].close()
            ruleset = _layer(_state["abi"], _state["read"], writable)
        ruleset.restrict_self()
    except OSError as exc:
        raise ConfinementError(f"cannot narrow the process to {folder}: {exc}") from exc
    record["writable"] = writable
    record["layers"] += 1
    return dict(record)


def current() -> dict[str, Any] | None:
    """What confine_process applied in this process (None before)."""
    record = _state.get("record")
    return dict(record) if record else None


def selftest(port: int, outside_file: str, pid: int) -> dict[str, Any]:
    """Confines this process as a read-only kernel is, then tries what a kernel must not do; each
    check says whether it was refused (for `pyexec doctor`)."""
    import socket

    record = confine_process("read_only", write_dirs=[])
    checks: dict[str, Any] = {}

    def check(name: str, fn: Any) -> None:
        try:
            fn()
            checks[name] = {"refused": False}
        except OSError as exc:
            # Refused by the confinement: EPERM (seccomp, capabilities, scoping), EACCES (Landlock),
            # EAFNOSUPPORT (seccomp). Anything else (nothing listening...) proves nothing.
            checks[name] = {"refused": exc.errno in (1, 13, 97), "errno": exc.errno, "error": str(exc)}

    def connect() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=3):
            pass

    check("tcp_connect_to_a_fleet_port", connect)
    check("read_a_file_outside", lambda: open(outside_file, "rb").close())
    check("read_another_process_environ", lambda: open(f"/proc/{pid}/environ", "rb").close())
    check("signal_another_process", lambda: os.kill(pid, 0))
    check("unix_socket", lambda: socket.socket(socket.AF_UNIX).close())
    check("raw_socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP).close())
    return {"confinement": record, "checks": checks}


def main(argv: list[str] | None = None) -> int:
    """`python -m pyexec_runtime.confine probe`: what this machine offers, as JSON.
    `python -m pyexec_runtime.confine selftest PORT FILE PID`: confine, try, report (JSON)."""
    import json

    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["probe"]:
        print(json.dumps(probe()))
        return 0
    if args[:1] == ["selftest"] and len(args) == 4:
        try:
            print(json.dumps(selftest(int(args[1]), args[2], int(args[3]))))
        except ConfinementError as exc:
            print(json.dumps({"error": str(exc)}))
            return 1
        return 0
    sys.stderr.write("usage: python -m pyexec_runtime.confine probe | selftest PORT FILE PID\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
