"""The rules of risky operations: native code, processes, dynamic code, the network, files and
secrets (a mixin of Checker: self is the checker)."""

from __future__ import annotations

import sys
from typing import Any

from . import model
from .cli import sent_write_tools
from .model import HIGH, LOW, MEDIUM
from .values import (
    EMPTY,
    MERGED,
    Lib,
    PathObj,
    ordered,
    widened_cs,
)

FILE_READ_METHODS = frozenset({"read_text", "read_bytes"})


# fmt: off
RISK_ROOTS = frozenset({
    "ctypes", "cffi", "_ctypes", "subprocess", "os", "posix", "pty", "asyncio", "multiprocessing", "commands", "sh",
    "pexpect", "builtins", "runpy", "code", "importlib", "socket", "requests", "httpx", "aiohttp", "urllib", "urllib3",
    "http", "ftplib", "smtplib", "telnetlib", "paramiko", "websocket", "websockets", "xmlrpc", "io", "codecs", "gzip",
    "bz2", "lzma", "shutil", "numpy", "pickle", "json", "pprint", "cProfile", "profile", "timeit", "pdb", "trace",
    "marshal", "dill", "cloudpickle", "shelve", "yaml", "jsonpickle", "operator", "pandas", "_pickle", "joblib",
    "torch", "pydoc", "pkgutil", "zmq",
})
# fmt: on


_SECRET_ENV_CALLS = frozenset({"os.getenv", "os.environ.get", "os.getenvb", "os.environ.setdefault", "os.environ.pop"})
_WHOLE_ENV_CALLS = frozenset({"os.environ.copy", "os.environ.items", "os.environ.keys", "os.environ.values"})
# fmt: off
_ENV_CONSUMERS = frozenset({"builtins.dict", "builtins.print", "builtins.str", "builtins.repr", "json.dumps",
                            "json.dump", "builtins.list", "pprint.pprint"})
# fmt: on
_ATTRIBUTE_CALLS = frozenset({"builtins.getattr", "builtins.setattr", "builtins.delattr"})


def risky(path: str, root: str) -> bool:
    """Whether Checker.risky_call can find anything in a call of `path` (every check there depends
    on the path first): calls of anything else skip it."""
    return bool(
        root in model.NATIVE_ROOTS
        or model.PROCESS_CALLS.match(path)
        or path in model.DYNAMIC_CODE
        or path in model.DATA_CODE
        or path.endswith((".__setattr__", ".__dict__", ".exec_module", ".load_module"))
        or path == "numpy.load"
        or path in ("operator.methodcaller", "operator.attrgetter")
        or path in model.DYNAMIC_IMPORT
        or path in _ATTRIBUTE_CALLS
        or model.NETWORK.match(path)
        or model.RAW_NETWORK.match(path)
        or path in model.FILE_OPEN
        or model.FILE_MUTATORS.match(path)
        or path.rsplit(".", 1)[-1] in model.SAVE_METHODS
        or path in _SECRET_ENV_CALLS
        or path in _WHOLE_ENV_CALLS
        or path in _ENV_CONSUMERS
    )


def starts_code(path: str) -> bool:
    """Whether calling path starts a process or runs code given as data (exec, import by name)."""
    return (
        bool(model.PROCESS_CALLS.match(path))
        or path in model.DYNAMIC_CODE
        or path in model.DYNAMIC_IMPORT
        or path in model.DATA_CODE
    )


def _safe_yaml_loader(kwargs: dict, args: list) -> bool:
    """yaml.load(..., Loader=yaml.SafeLoader / BaseLoader): builds no Python objects."""
    loaders = kwargs.get("Loader", args[1] if len(args) > 1 else EMPTY)
    safe = ("SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader", "FullLoader", "CFullLoader")
    return bool(loaders) and all(v[0] == "p" and v[1].rsplit(".", 1)[-1] in safe for v in loaders)


SYS_PATH_MUTATORS = frozenset({"sys.path.insert", "sys.path.append", "sys.path.extend", "site.addsitedir"})
# Methods of network connections that send data (a command line sent to an IOC shell or a remote
# shell runs there; an ssh client's exec_command is a command line of its own: risky_call).
_SEND_METHODS = frozenset({"send", "sendall", "sendto", "write", "writelines"})


def installed(module: str) -> bool:
    """Whether a top-level module is in the standard library or a common library (model.KNOWN_LIBRARIES)."""
    return (
        not module
        or module == "__main__"
        or module in sys.stdlib_module_names
        or module in sys.builtin_module_names
        or module in model.KNOWN_LIBRARIES
    )


def _has_callable(values: frozenset) -> bool:
    """Whether some value is a library path or a container (something that may hold a function)."""
    for v in values:
        k = v[0]
        if k == "p" or k == "k" or (k == "u" and len(v) > 2):
            return True
    return False


class RiskRules:
    def risky_call(self, node: Any, callee: Any, path: str, shown: str, args: list, kwargs: dict) -> None:
        root = path.split(".", 1)[0].split("(", 1)[0]
        if root in model.NATIVE_ROOTS:
            self.add("ctypes", HIGH, node, f"native code through {root}: `{callee}(...)` can bypass every guard")
        if model.PROCESS_CALLS.match(path):
            self.add("process-spawn", HIGH, node, f"starts a process: `{callee}(...)` ({shown})")
            self.command_line(node, callee, path, args, kwargs)
            self.possible_write(
                node,
                "process",
                f"possible EPICS write: `{callee}(...)` starts a process ({shown}); a "
                "process can run any Channel Access client, and a read-only kernel may not start one",
                "epics-process",
                HIGH,
            )
        code_kind = model.DYNAMIC_CODE.get(path)
        if code_kind is not None:
            self.dynamic_code(node, callee, code_kind, args, kwargs)
        data_code = model.DATA_CODE.get(path)
        if path == "numpy.load" and "allow_pickle" in kwargs:
            data_code = "may load a pickle (allow_pickle), which can call any function"
        elif root == "importlib" and path.endswith((".exec_module", ".load_module")):
            data_code = "runs a module's code, which the program does not show"
        if data_code is not None and not (path in ("yaml.load", "yaml.load_all") and _safe_yaml_loader(kwargs, args)):
            self.add("dynamic-code", HIGH, node, f"runs code the program does not show: `{callee}(...)` {data_code}")
            self.possible_write(
                node,
                "dynamic",
                f"possible EPICS write: `{callee}(...)` {data_code}; what it runs can reach the control system",
                "epics-dynamic",
                HIGH,
            )
        if path.endswith(".__setattr__") and args:
            base = path[: -len(".__setattr__")]
            receivers, names = frozenset({Lib(base)}), args[0]
            if base in ("builtins.object", "builtins.type") and len(args) > 1:  # object.__setattr__(pv, "value", 1)
                receivers, names = args[0], args[1]
            self.dynamic_attribute(node, callee, receivers, names, "sets")
            for name in sorted(v[1] for v in names if v[0] == "s" and v[2]):
                self.attribute_store(node, receivers, name, f"__setattr__({name!r}, ...)")
        if path in ("operator.methodcaller", "operator.attrgetter") and args and self.s.near_cs:
            names = {v[1].rsplit(".", 1)[-1] for v in args[0] if v[0] == "s" and v[2]}
            if names & model.WRITE_METHODS or len(names) < len(args[0]):
                self.possible_write(
                    node,
                    "dynamic",
                    f"possible EPICS write: `{callee}(...)` calls or reaches a method "
                    "by name on objects the analysis does not follow, in a program that uses the "
                    "control system",
                    "epics-dynamic",
                    MEDIUM,
                )
        import_kind = model.DYNAMIC_IMPORT.get(path)
        if import_kind is not None:
            names = [v for v in (args[0] if args else EMPTY) if v[0] == "s" and v[2]]
            self.add("dynamic-import", MEDIUM, node, f"dynamic import: `{callee}(...)`")
            if (not names or len(names) < len(args[0] if args else EMPTY)) and self.s.near_cs:
                self.possible_write(
                    node,
                    "dynamic",
                    f"possible EPICS write: `{callee}(...)` imports a module whose name "
                    "is computed, in a program that uses the control system",
                    "epics-dynamic",
                    HIGH,
                )
        if path == "builtins.getattr" and len(args) >= 2:
            self.dynamic_attribute(node, callee, args[0], args[1], "reads")
        elif path == "builtins.setattr" and len(args) >= 3:
            self.dynamic_attribute(node, callee, args[0], args[1], "sets")
            for name in sorted(v[1] for v in args[1] if v[0] == "s" and v[2]):
                self.attribute_store(node, args[0], name, f"setattr(..., {name!r}, ...)")
        elif path == "builtins.delattr" and len(args) >= 2:
            self.dynamic_attribute(node, callee, args[0], args[1], "deletes")
        if model.RAW_NETWORK.match(path):
            self.add("network", MEDIUM, node, f"network access: `{callee}(...)` ({shown})")
        if (
            (model.NETWORK.match(path) or model.RAW_NETWORK.match(path))
            and not model.HTTP_CLIENT_OBJECTS.match(path)
            and not self.to_archiver(path, args, kwargs)
        ):
            self.possible_write(
                node,
                "network",
                f"possible EPICS write: `{callee}(...)` opens a network connection "
                f"({shown}); raw network access can speak Channel Access or a facility gateway's "
                "protocol to any host, and a read-only kernel reaches only its Channel Access endpoint "
                "(configured archivers are exempt: control_system.archivers)",
                "epics-network",
                MEDIUM,
            )
        if model.NETWORK.match(path):
            self.add("network", MEDIUM, node, f"network access: `{callee}(...)` ({shown})")
            if path.endswith(".exec_command"):  # an ssh client runs the command line on its host
                self.command_line(node, callee, path, args, kwargs)
            elif path.rsplit(".", 1)[-1] in _SEND_METHODS and args:
                for tool in sent_write_tools(args[0]):
                    self.write(
                        node,
                        f"cli:{tool}",
                        f"EPICS write: `{callee}(...)` sends the command {tool} over the "
                        "network, to a shell that runs it (an IOC shell, ssh)",
                    )
            if model.HTTP_MUTATION.match(path) and self.s.near_cs:
                self.possible_write(
                    node,
                    shown,
                    f"possible control-system write: `{callee}(...)` sends an HTTP "
                    f"{path.rsplit('.', 1)[1].upper()} from a program that uses the control system (facility REST "
                    "gateways can change machine state)",
                )
        if path in model.FILE_OPEN:
            self.open_call(node, callee, path, args, kwargs)
        elif model.FILE_MUTATORS.match(path):
            copies = path.startswith(("shutil.copy", "shutil.move"))
            targets = args[1:] if copies and len(args) > 1 else args[:1]
            if path in ("pickle.dump", "json.dump"):
                targets = []
            for t in targets:
                self.file_target(node, callee, t, True, code=not copies)
        elif path.rsplit(".", 1)[-1] in model.SAVE_METHODS and args:
            self.file_target(node, callee, args[0], True, quiet_unknown=True)
        self.secrets_call(node, callee, path, args, kwargs)

    def to_archiver(self, path: str, args: list, kwargs: dict) -> bool:
        """An HTTP read whose URL is known to start with a configured archiver's (not a mutation)."""
        if not self.archivers or model.HTTP_MUTATION.match(path):
            return False
        method = path.rsplit(".", 1)[-1]
        if method not in ("get", "head", "request", "urlopen", "stream", "urlretrieve"):
            return False
        index = 1 if method == "request" else 0
        urls = kwargs.get("url") or (args[index] if len(args) > index else None)
        if not urls:
            return False
        for v in urls:
            if v[0] != "s":
                return False
            known = v[1].split("\x00", 1)[0]
            if not any(known.startswith(a) or (v[2] and known + "/" == a) for a in self.archivers):
                return False
        return True

    def escapes(self, node: Any, callee: Any, fvals: frozenset, args: list, kwargs: dict) -> None:
        """A write function handed to code we do not follow may be called there."""
        for values in args:
            if _has_callable(values):
                break
        else:
            for values in kwargs.values():
                if _has_callable(values):
                    break
            else:
                return
        for f in fvals:
            k = f[0]
            if not ((k == "p" and f[1] in model.HARMLESS_CONSUMERS) or k == "f" or k == "m" or k == "c"):
                break
        else:
            return  # every callee is harmless or followed
        for f in fvals:
            if f[0] == "p" and f[1] == "functools.partial":
                return
        for values in [*args, *kwargs.values()]:
            for name in self.write_values(values):
                self.write(node, name, f"EPICS write: passes {name} to `{callee}(...)`, which may call it")
            for v in ordered(values):
                if v[0] == "p" and "(" not in v[1] and "read" in self.path_kind(v[1]):
                    shown = model.display(v[1])
                    self.read(node, shown, f"EPICS read: passes {shown} to `{callee}(...)`, which calls it")
            for v in ordered(values):
                if widened_cs(v) and v[1] in model.WRITE_METHODS:
                    self.possible_write(
                        node,
                        f"{v[2]}.{v[1] or '?'}",
                        f"possible EPICS write: passes something "
                        f"reached from {v[2]} by a chain of accesses the analysis stopped following "
                        f"to `{callee}(...)`, which may call it",
                        "analysis-limit",
                        HIGH,
                    )
                if v[0] == "p" and model.cs_root(v[1]) and "(" not in v[1] and "." not in v[1]:
                    self.possible_write(
                        node,
                        v[1],
                        f"possible EPICS write: passes the {v[1]} module to "
                        f"`{callee}(...)`, which the analysis does not follow",
                    )

    # ---- files and secrets -------------------------------------------------------------------
    def classify(self, text: str | None, complete: bool = True) -> str:
        if text is None:
            return "unknown"
        if text.startswith(MERGED):
            # One of several texts (values.merge_many): the most concerning of them.
            found = {self.classify(line) for line in text[len(MERGED) :].split("\n")}
            return next((w for w in ("protected", "outside", "unknown") if w in found), "inside")
        prefix = text.split("\x00", 1)[0]
        if model.SECRET_PATH.search(prefix) or any(prefix.startswith(p) or prefix + "/" == p for p in self.protected):
            return "protected"
        if not prefix:
            return "unknown"
        if prefix.startswith(("/", "~", "\\", "../")) or prefix == ".." or "/../" in prefix:
            return "outside"
        return "inside"

    def path_texts(self, values: frozenset) -> list[tuple[str | None, bool]]:
        out: list[tuple[str | None, bool]] = []
        for v in ordered(values):
            if v[0] == "s":
                out.append((v[1], v[2]))
            elif v[0] == "po":
                out.append((v[1], v[1] is not None and "\x00" not in v[1]))
            else:
                out.append((None, False))
        return out or [(None, False)]

    def file_target(
        self, node: Any, callee: Any, values: frozenset, writing: bool, quiet_unknown: bool = False, code: bool = True
    ) -> None:
        """Checks a file a call reads or writes; code: whether what it writes comes from the program
        (a .py file written is code to run later; one copied is not new code)."""
        for text, complete in self.path_texts(values):
            where = self.classify(text, complete)
            shown = (text or "").replace("\x00", "…")
            if where == "protected":
                verb = "writes" if writing else "reads"
                self.add(
                    "secrets-access", HIGH, node, f"`{callee}(...)` {verb} {shown!r}, a configuration or secrets path"
                )
            elif not writing:
                continue
            elif where == "outside":
                self.add("file-write", MEDIUM, node, f"`{callee}(...)` writes {shown!r}, outside the execution folder")
            elif where == "unknown" and not quiet_unknown:
                self.add(
                    "file-write",
                    LOW,
                    node,
                    f"`{callee}(...)` writes a file whose path the analysis cannot "
                    "resolve (it may be outside the execution folder)",
                )
            if writing and code and text and text.rstrip("\x00").endswith((".py", ".pth", ".pyc", ".pyw")):
                self.possible_write(
                    node,
                    "dynamic",
                    f"possible EPICS write: `{callee}(...)` writes the Python file "
                    f"{shown!r}, which an import or a later run executes unseen",
                    "epics-dynamic",
                    HIGH,
                )

    def open_call(self, node: Any, callee: Any, path: str, args: list, kwargs: dict) -> None:
        mode_values = args[1] if len(args) > 1 else kwargs.get("mode" if path != "os.open" else "flags", EMPTY)
        if path == "os.open":
            writing = True
        elif not mode_values:
            writing = False
        else:
            writing = any(not (v[0] == "s" and v[2]) or any(ch in v[1] for ch in "wax+") for v in mode_values)
        target = args[0] if args else kwargs.get("file", EMPTY)
        self.file_target(node, callee, target, writing)

    def path_method(self, node: Any, callee: Any, text: str | None, name: str, args: list, kwargs: dict) -> None:
        if name in model.PATH_WRITE_METHODS:
            self.file_target(node, callee, frozenset({PathObj(text)}), True)
        elif name == "open":
            mode_values = args[0] if args else kwargs.get("mode", EMPTY)
            writing = bool(mode_values) and any(
                not (v[0] == "s" and v[2]) or any(c in v[1] for c in "wax+") for v in mode_values
            )
            self.file_target(node, callee, frozenset({PathObj(text)}), writing)
        elif name in FILE_READ_METHODS:
            self.file_target(node, callee, frozenset({PathObj(text)}), False)

    def secrets_call(self, node: Any, callee: Any, path: str, args: list, kwargs: dict) -> None:
        if path in _SECRET_ENV_CALLS:
            for v in ordered(args[0]) if args else EMPTY:
                if v[0] == "s" and model.SECRET_ENV.search(v[1]):
                    self.add("secrets-access", HIGH, node, f"reads the secret environment variable {v[1]!r}")
        elif path in _WHOLE_ENV_CALLS or (
            path in _ENV_CONSUMERS
            and any(v[0] == "p" and v[1] in ("os.environ", "os.environb") for a in args for v in a)
        ):
            self.add("secrets-access", MEDIUM, node, f"reads the whole environment: `{callee}(...)`")
