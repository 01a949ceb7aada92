"""Pass 3: turn the solved values into findings (control-system writes and reads, risky operations)."""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from . import model
from .solve import EMPTY, MERGED, Solver, _src, ordered

HIGH, MEDIUM, LOW, INFO = "high", "medium", "low", "info"
FILE_READ_METHODS = frozenset({"read_text", "read_bytes"})


_RISK_ROOTS = frozenset(
    {
        "ctypes",
        "cffi",
        "_ctypes",
        "subprocess",
        "os",
        "posix",
        "pty",
        "asyncio",
        "multiprocessing",
        "commands",
        "sh",
        "pexpect",
        "builtins",
        "runpy",
        "code",
        "importlib",
        "socket",
        "requests",
        "httpx",
        "aiohttp",
        "urllib",
        "urllib3",
        "http",
        "ftplib",
        "smtplib",
        "telnetlib",
        "paramiko",
        "websocket",
        "websockets",
        "xmlrpc",
        "io",
        "codecs",
        "gzip",
        "bz2",
        "lzma",
        "shutil",
        "numpy",
        "pickle",
        "json",
        "pprint",
        "cProfile",
        "profile",
        "timeit",
        "pdb",
        "trace",
        "marshal",
        "dill",
        "cloudpickle",
        "shelve",
        "yaml",
        "jsonpickle",
        "operator",
        "pandas",
        "_pickle",
        "joblib",
        "torch",
        "pydoc",
        "pkgutil",
        "zmq",
    }
)


_SECRET_ENV_CALLS = frozenset({"os.getenv", "os.environ.get", "os.getenvb", "os.environ.setdefault", "os.environ.pop"})
_WHOLE_ENV_CALLS = frozenset({"os.environ.copy", "os.environ.items", "os.environ.keys", "os.environ.values"})
_ENV_CONSUMERS = frozenset(
    {
        "builtins.dict",
        "builtins.print",
        "builtins.str",
        "builtins.repr",
        "json.dumps",
        "json.dump",
        "builtins.list",
        "pprint.pprint",
    }
)
_ATTRIBUTE_CALLS = frozenset({"builtins.getattr", "builtins.setattr", "builtins.delattr"})


def _risky(path: str, root: str) -> bool:
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


def _starts_code(path: str) -> bool:
    """Whether calling path starts a process or runs code given as data (exec, import by name)."""
    return (
        bool(model.PROCESS_CALLS.match(path))
        or path in model.DYNAMIC_CODE
        or path in model.DYNAMIC_IMPORT
        or path in model.DATA_CODE
    )


def _widened_cs(v: tuple) -> bool:
    """Whether v is a widened value (solve.widened_path) reached from a control-system library."""
    return v[0] == "u" and len(v) > 2 and model.cs_root(v[2])


def _component(base: str) -> bool:
    """An attribute of an ophyd device or signal (a component: another signal), not data read through
    it: EpicsMotor(...).user_setpoint, dev.velocity."""
    return (
        base.startswith(("ophyd.", "bluesky.")) and ("(" in base or "[" in base) and not model.through_data_call(base)
    )


def _handle_class(base: str) -> bool:
    """A control-system class, whose methods called unbound take the instance first: epics.PV.put(pv, 1)."""
    if "(" in base or "[" in base:
        return False
    last = base.rsplit(".", 1)[-1]
    return last[:1].isupper()


def _safe_yaml_loader(kwargs: dict, args: list) -> bool:
    """yaml.load(..., Loader=yaml.SafeLoader / BaseLoader): builds no Python objects."""
    loaders = kwargs.get("Loader", args[1] if len(args) > 1 else EMPTY)
    safe = ("SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader", "FullLoader", "CFullLoader")
    return bool(loaders) and all(v[0] == "p" and v[1].rsplit(".", 1)[-1] in safe for v in loaders)


_UNKNOWN_WORD = frozenset({""})
_SCRIPT_SUFFIXES = (".sh", ".bash", ".py", ".pl", ".rb", ".tcl", ".ipynb", ".csh", ".zsh", ".js")


_SYSTEM_DIRS = ("/usr/", "/bin/", "/sbin/")
# An instance of a pyepics device class itself (epics.devices.Scaler(), epics.devices.mca.MCA()), not
# something one of its methods returned (mca.get_rois()[0].LO is data).
_DEVICE_INSTANCE = re.compile(r"^epics\.devices(\.[a-z_0-9]+)*\.[A-Za-z_]\w*\(\)$")
_SYS_PATH_MUTATORS = frozenset({"sys.path.insert", "sys.path.append", "sys.path.extend", "site.addsitedir"})
# Methods of network connections that send data (a command line sent to an IOC shell or a remote
# shell runs there; an ssh client's exec_command is a command line of its own: risky_call).
_SEND_METHODS = frozenset({"send", "sendall", "sendto", "write", "writelines"})
_AWK = frozenset({"awk", "gawk", "mawk", "nawk"})
# awk code that runs commands: system(...), print ... | "cmd" (a pipe not between quotes: "|" is a
# separator), "cmd" | getline, and coprocesses (|&).
_AWK_COMMANDS = re.compile(r"\bsystem\s*\(|(?<![\"'])\|\s*\"|\|\s*getline\b|\|&")


def _installed(module: str) -> bool:
    """Whether a top-level module is in the standard library or a common library (model.KNOWN_LIBRARIES)."""
    return (
        not module
        or module == "__main__"
        or module in sys.stdlib_module_names
        or module in sys.builtin_module_names
        or module in model.KNOWN_LIBRARIES
    )


def _program_word(word: str) -> str:
    """A command word as the analysis compares it: a system program by its name (/usr/bin/ls is ls);
    any other path as it is (a script of the facility's)."""
    return word.rsplit("/", 1)[-1] if word.startswith(_SYSTEM_DIRS) else word


def _word_texts(values: frozenset) -> set[str]:
    """The texts one word of a command (one element of a list display) may be; "" where not known."""
    out = set()
    for v in values:
        if v[0] == "s" and v[2]:
            out.add(_program_word(v[1]))
        elif v[0] == "p" and v[1] == "sys.executable":
            out.add("python")
        else:
            out.add("")
    return out or {""}


def _command_segments(text: str) -> list[list[frozenset]]:
    """The command lines in a command string: cut at ; & | newlines $( and backquotes; shell quotes
    and backslashes dropped (c""aput is caput); a word with an unknown part is unknown."""
    out = []
    if "$(" in text or "`" in text:  # command substitution: the shell builds the command
        out.append([_UNKNOWN_WORD])
    for segment in re.split(r"[;&|\n]+|\$\(|`", text.replace('"', "").replace("'", "").replace("\\", "")):
        words = []
        for word in segment.split():
            if "\x00" in word or "%(" in word or any(c in word for c in "*?[]{}$"):  # unknown, or expanded
                words.append(_UNKNOWN_WORD)
            else:
                words.append(frozenset({_program_word(word)}))
        if words:
            out.append(words)
    if "\x00" in text and not out:
        out.append([_UNKNOWN_WORD])
    return out


def _is_interpreter(word: str) -> bool:
    return word in model.CLI_INTERPRETERS or bool(model.CLI_INTERPRETER_NAME.match(word))


def _hidden(words: list[frozenset], depth: int) -> str | None:
    """Why a command line (words: the sets of texts each word may be) may run commands its text does
    not show: its program not known, a script, or a shell or interpreter not given its whole program
    with -c; wrappers (timeout, nice, env, xargs, ssh host ...) are looked through."""
    i = 0
    while i < len(words) and depth < 4:
        program = words[i]
        if "" in program:
            return "runs a command the analysis cannot resolve"
        if i == 0 and all("=" in w and not w.startswith("-") for w in program):  # VAR=value before the command
            i += 1
            continue
        spaced = [w for w in sorted(program) if any(c in w for c in " \t;&|")]
        if spaced:  # one word holding a whole command line (ssh host "cd /opt && ./restore")
            return _hidden_in(spaced, depth + 1)
        script = next(
            (w for w in sorted(program) if w.startswith(("./", "/", "~", "../")) or w.endswith(_SCRIPT_SUFFIXES)), None
        )
        if script is not None:
            return f"runs the script {script}, which the analysis cannot see"
        if program <= model.CLI_WRAPPERS:  # the program is the first word after its options (and ssh's host)
            i += 1
            # timeout DURATION, ssh HOST ...: a word before the program, known or not
            positional = max(model.CLI_WRAPPER_POSITIONALS.get(w, 0) for w in program)
            takes_value = frozenset().union(*(model.CLI_WRAPPER_VALUE_OPTIONS.get(w, EMPTY) for w in program))
            while i < len(words):
                word = words[i]
                known = "" not in word
                if known and word & takes_value:  # sudo -u opr, timeout -s INT: the option and its value
                    i += 2
                elif known and any(w.startswith("-") or "=" in w for w in word):
                    i += 1
                elif positional > 0:
                    positional -= 1
                    i += 1
                elif known and any(w.replace(".", "").isdigit() for w in word):  # nice 5 cmd
                    i += 1
                else:
                    break
            continue
        rest = words[i + 1 :]
        runner = next((w for word in rest for w in sorted(word) if w in ("-exec", "-execdir", "-ok", "-okdir")), None)
        if runner is not None:
            return f"runs commands through `{runner}`, which the analysis cannot see"
        interpreter = next((w for w in sorted(program) if _is_interpreter(w)), None)
        if interpreter is None:
            return None
        for j, word in enumerate(rest):
            flags = next(iter(word)) if len(word) == 1 else ""
            given = flags.startswith("-") and not flags.startswith("--") and "c" in flags  # -c, -lc, -ec
            if given and j + 1 < len(rest) and "" not in rest[j + 1]:
                if interpreter.startswith(("python", "pypy", "ipython")):
                    return None  # its code is analysed as Python (command_line)
                return _hidden_in(sorted(rest[j + 1]), depth + 1)
        return f"runs {interpreter}, whose commands (a script, standard input, a module) the analysis cannot see"
    return None


def _inert(line: list[frozenset]) -> bool:
    """Whether a command line is run by a program that never runs its arguments (model.CLI_INERT;
    not git with -c, --config-env, --exec-path or an ! alias: git -c core.pager=... runs the pager)."""
    if not line or not line[0] <= model.CLI_INERT:
        return False
    return "git" not in line[0] or not any(
        w in ("-c", "--config-env") or w.startswith(("!", "--exec", "-c")) for word in line[1:] for w in word
    )


def _hidden_in(texts: list[str], depth: int) -> str | None:
    """Why one of the command lines in texts (a shell's -c argument, ssh's remote command) may run
    commands its text does not show (None: none does)."""
    for text in texts:
        for line in _command_segments(text):
            why = _hidden(line, depth)
            if why:
                return why
    return None


def _named_program(path: str) -> str | None:
    """The program a call of the sh library names by attribute (sh.ls(...) runs ls; sh.Command(x) runs x)."""
    return path[3:] if path.startswith("sh.") and path != "sh.Command" else None


def _sent_write_tools(values: frozenset) -> list[str]:
    """The write tools that start a command line in the texts sent over a connection."""
    tools = set()
    for v in values:
        if v[0] == "s":
            for line in _command_segments(v[1]):
                tools.update(line[0] & model.CLI_WRITE_TOOLS)
    return sorted(tools)


def _has_callable(values: frozenset) -> bool:
    """Whether some value is a library path or a container (something that may hold a function)."""
    for v in values:
        k = v[0]
        if k == "p" or k == "k" or (k == "u" and len(v) > 2):
            return True
    return False


def _alias(callee: Any, shown: str) -> str:
    text = str(callee)
    return "" if text == shown or shown.endswith("." + text) else f" (`{text}` is {shown})"


MAX_WRITE_SITES = 200
MAX_SITE_PVS = 20


def _arg(node: Any, positional: list, index: int, names: tuple) -> Any:
    """The expression passed as positional argument `index` or as one of the keywords `names`."""
    if index < len(positional) and type(positional[index]) is not ast.Starred:
        return positional[index]
    for kw in getattr(node, "keywords", []):
        if kw.arg in names:
            return kw.value
    return None


class _Lazy:
    """The source text of a node (and a suffix), made only when a message needs it."""

    __slots__ = ("node", "suffix", "text")

    def __init__(self, node: Any, suffix: str = "") -> None:
        self.node = node
        self.suffix = suffix
        self.text: str | None = None

    def __str__(self) -> str:
        if self.text is None:
            self.text = _src(self.node) + self.suffix
        return self.text

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class Checker:
    def __init__(self, solver: Solver, options: dict, sub: Callable[[str, str, Any], dict | None]) -> None:
        self.s = solver
        self.scope: Any = None  # the scope of the call being checked (on_call)
        self.options = options
        self.sub = sub  # analyses code found in a constant string (exec("..."), python -c "...")
        self.reset()
        self.path_kinds: dict[str, frozenset] = {}
        self.protected = tuple(p.rstrip("/") + "/" for p in options.get("protected_paths", []) if p)
        self.builtin_cs = options.get("builtin_cs", True)
        # Archivers the code may fetch from over HTTP (control_system.archivers): URL prefixes.
        self.archivers = tuple(a if a.endswith("/") else a + "/" for a in options.get("archivers", []) if a)
        solver.keep = self.keeps_exact

    def keeps_exact(self, path: str) -> bool:
        """Whether a path must stay exact when the solver widens values that grow (solve.widen_chains):
        a write, a process or dynamic-code call, or a control-system handle (whose methods and
        attribute stores may write). Finitely many: the length limits still apply to them. (Native
        and network calls stay found when widened: see widened_call.)"""
        if "write" in self.path_kind(path) or path in model.WRITE_ATTRIBUTES or path in model.WRITE_METHOD_PREFIX:
            return True
        return _starts_code(path) or (model.cs_root(path) and self.is_handle(path))

    def reset(self) -> None:
        self.findings: list[dict] = []
        self.seen: set = set()
        self.write_sites: list[dict] = []
        self.site_keys: set = set()
        self.writes: set[str] = set()
        self.reads: set[str] = set()
        self.possible_writes = False
        self.extends_path = False  # the program adds to sys.path (an import may then be its own code)

    # ---- output ------------------------------------------------------------------------------
    def add(self, rule: str, severity: str, node: Any, message: str) -> None:
        line = getattr(node, "lineno", 0) or 0
        col = getattr(node, "col_offset", 0) or 0
        key = (rule, line, col, message)
        if key in self.seen:
            return
        self.seen.add(key)
        self.findings.append({"rule": rule, "severity": severity, "line": line, "column": col, "message": message})

    def write(self, node: Any, name: str, message: str, severity: str = MEDIUM) -> None:
        if not self.builtin_cs:
            return
        self.writes.add(name)
        self.add("epics-write", severity, node, message)

    def write_site(self, node: Any, path: str, shown: str, args: list, kwargs: dict) -> None:
        """What a write call puts where, for the approver's summary: the PV (the names the analysis
        resolved, and the expression as written) and the value expression. Data only: no verdict
        depends on it. caput(pv, value) names its PV first; a handle's method (pv.put(value)) is
        written to the handle the receiver expression names."""
        if not self.builtin_cs or len(self.write_sites) >= MAX_WRITE_SITES:
            return
        key = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0), shown)
        if key in self.site_keys:
            return
        self.site_keys.add(key)
        call_args = getattr(node, "args", [])
        base = self.split(path)[0]
        method = base.endswith(("()", "[]")) and not base.endswith("Context()")
        pv_node = getattr(node.func, "value", None) if method else _arg(node, call_args, 0, ("pvname", "pv", "name"))
        value_node = _arg(node, call_args, 0 if method else 1, ("value", "values"))
        pv_values = EMPTY if method or not args or type(args[0]) is not frozenset else args[0]
        if not method and not call_args and "pvname" in kwargs:
            pv_values = kwargs["pvname"]
        self.write_sites.append(
            {
                "line": key[0],
                "column": key[1],
                "call": shown,
                "pvs": sorted(v[1] for v in pv_values if v[0] == "s" and v[2])[:MAX_SITE_PVS],
                "target": _src(pv_node) if pv_node is not None else None,
                "value": _src(value_node) if value_node is not None else None,
            }
        )

    def possible_write(
        self, node: Any, name: str, message: str, rule: str = "epics-possible-write", severity: str = MEDIUM
    ) -> None:
        if not self.builtin_cs:
            return
        self.writes.add(name)
        self.possible_writes = True
        self.add(rule, severity, node, message)

    def read(self, node: Any, name: str, message: str | Callable[[], str]) -> None:
        """Only the first read of a name becomes a finding; `message` may be a function, so the text
        (source of the callee) is made only then."""
        if not self.builtin_cs:
            return
        if name not in self.reads:
            self.add("epics-read", INFO, node, message if type(message) is str else message())
        self.reads.add(name)

    # ---- classification ----------------------------------------------------------------------
    @staticmethod
    def split(path: str) -> tuple[str, str]:
        i = path.rfind(".")
        return (path[:i], path[i + 1 :]) if i > 0 else ("", path)

    @staticmethod
    @lru_cache(maxsize=4096)
    def is_handle(base: str) -> bool:
        """An instance path that is a connection object (PV, Context, Motor ...), not data read through
        one: no call along the path returned data (DATA_CALLS)."""
        return base.endswith(("()", "[]")) and not model.through_data_call(base)

    def is_write_path(self, path: str) -> bool:
        if path in model.WRITE_CALLS or path.startswith(model.WRITE_PREFIXES):
            return True
        base, name = self.split(path)
        if name in model.DISTINCT_WRITE_METHODS:
            return True
        if not model.cs_root(path):
            return False
        if name in model.WRITE_METHODS and (self.is_handle(base) or _component(base) or _handle_class(base)):
            return True
        if base == "tango.DeviceProxy()" and name[:1].isupper() and name not in ("State", "Status"):  # dp.On()
            return True
        if name in model.DEVICE_WRITE_METHODS and _DEVICE_INSTANCE.match(base):  # scaler.Count()
            return True
        prefix = model.WRITE_METHOD_PREFIX.get(base)
        return prefix is not None and name.startswith(prefix)

    def is_read_path(self, path: str) -> bool:
        base, name = self.split(path)
        if name in model.DISTINCT_READ_METHODS:
            return True
        if not model.cs_root(path):
            return False
        return ("(" not in base and "[" not in base) or self.is_handle(base)

    def write_values(self, values: frozenset) -> list[str]:
        out = []
        path_kind = self.path_kind
        for v in values:
            k = v[0]
            if k == "p":
                if "write" in path_kind(v[1]):
                    out.append(model.display(v[1]))
            elif k == "k":
                for m in self.s.containers.get(v[1], EMPTY):
                    if m[0] == "p" and "write" in path_kind(m[1]):
                        out.append(model.display(m[1]))
        return sorted(set(out)) if out else out

    # ---- calls -------------------------------------------------------------------------------
    def on_call(self, node: Any, scope: Any, fvals: frozenset, args: list, kwargs: dict) -> None:
        self.scope = scope
        callee = _Lazy(node.func)
        local_only = True
        for f in ordered(fvals):
            k = f[0]
            if k == "p":
                local_only = False
                self.call_path(node, callee, f[1], args, kwargs)
            elif k == "u":
                local_only = False
                name = f[1]
                if len(f) > 2:
                    self.widened_call(node, callee, f[2], name, args, kwargs)
                if name in model.DISTINCT_WRITE_METHODS:
                    self.write(node, name, f"control-system write: `{callee}(...)` calls a `{name}` method")
                elif name in model.DISTINCT_READ_METHODS:
                    self.read(
                        node, name, lambda name=name: f"control-system read: `{callee}(...)` calls a `{name}` method"
                    )
                elif name in model.UNRESOLVED_WRITE_METHODS and self.s.near_cs and len(f) == 2:
                    self.possible_write(
                        node,
                        f"?.{name}",
                        f"possible EPICS write: `{callee}(...)` calls `{name}` on an object the analysis cannot "
                        "resolve, in a program that uses the control system",
                    )
                elif name in model.SAVE_METHODS and args:
                    self.file_target(node, callee, args[0], True, quiet_unknown=True)
            elif k == "d":
                local_only = False
                self.possible_write(
                    node,
                    "dynamic",
                    f"possible EPICS write: `{callee}(...)` calls something reached by dynamic access ({f[1]})",
                    "epics-dynamic",
                    HIGH,
                )
            elif k == "pom":
                local_only = False
                self.path_method(node, callee, f[1], f[2], args, kwargs)
            elif k in ("ka", "smeth", "const", "s", "po", "g", "i", "k"):
                local_only = False
        if not local_only:
            self.escapes(node, callee, fvals, args, kwargs)

    def widened_call(self, node: Any, callee: Any, root: str, name: str | None, args: list, kwargs: dict) -> None:
        """A call of a value reached from the library `root` by a chain the analysis stopped following
        (solve.widen_chains): a control-system library's is a possible write when it may be a write
        method or anything at all (name None: the result of a call); another dangerous library's is
        checked as a call of `root.name` when that would start a process, run native or dynamic code or
        use the network (not file operations: `name = name.replace(...)` on a string from os.path)."""
        why = (
            f"`{callee}(...)` calls something reached from {root} by a chain of accesses the analysis stopped following"
        )
        if model.cs_root(root):
            if name is None or name in model.WRITE_METHODS:
                self.possible_write(
                    node, f"{root}.{name or '?'}", f"possible EPICS write: {why}", "analysis-limit", HIGH
                )
        elif name is not None:
            path = f"{root}.{name}"
            if (
                root in model.NATIVE_ROOTS
                or _starts_code(path)
                or model.NETWORK.match(path)
                or model.RAW_NETWORK.match(path)
            ):
                self.risky_call(node, callee, path, model.display(path), args, kwargs)

    def call_path(self, node: Any, callee: Any, path: str, args: list, kwargs: dict) -> None:
        if path in _SYS_PATH_MUTATORS:
            self.extends_path = True
        kind = self.path_kinds.get(path)
        if kind is None:
            kind = self.path_kinds[path] = self.classify_path(path)
        if not kind:
            return
        shown = model.display(path)
        if "namespace" in kind:
            self.possible_write(
                node,
                shown,
                f"possible EPICS write: `{callee}(...)` calls something taken from "
                f"the namespace of {path.split('.', 1)[0]} ({shown}), which the analysis does not "
                "follow",
                "epics-dynamic",
                HIGH,
            )
        if "write" in kind:
            self.write(node, shown, f"EPICS write: calls {shown}{_alias(callee, shown)}")
            self.write_site(node, path, shown, args, kwargs)
        elif "read" in kind:
            self.read(node, shown, lambda: f"EPICS read: calls {shown}{_alias(callee, shown)}")
        if "other" in kind:
            self.risky_call(node, callee, path, shown, args, kwargs)

    def path_kind(self, path: str) -> frozenset:
        kind = self.path_kinds.get(path)
        if kind is None:
            kind = self.path_kinds[path] = self.classify_path(path)
        return kind

    def classify_path(self, path: str) -> frozenset:
        kinds = set()
        if ".__dict__" in path and model.cs_root(path):
            kinds.add("namespace")
        if self.is_write_path(path):
            kinds.add("write")
        elif self.is_read_path(path):
            kinds.add("read")
        root = path.split(".", 1)[0].split("(", 1)[0]
        if (
            root in _RISK_ROOTS or path.rsplit(".", 1)[-1] in model.SAVE_METHODS or path.endswith(".__setattr__")
        ) and _risky(path, root):
            kinds.add("other")
        return frozenset(kinds)

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
            receivers, names = frozenset({("p", base)}), args[0]
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
                for tool in _sent_write_tools(args[0]):
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
                if _widened_cs(v) and v[1] in model.WRITE_METHODS:
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

    # ---- dynamic access ----------------------------------------------------------------------
    def dynamic_code(self, node: Any, callee: Any, kind: str, args: list, kwargs: dict) -> None:
        self.add("dynamic-code", HIGH, node, f"runs dynamic code: `{callee}(...)` ({kind})")
        # the code: the first argument (source=, stmt=, code=), and timeit's setup (second, or setup=)
        code = [args[0] if args else kwargs.get("source", kwargs.get("stmt", kwargs.get("code", EMPTY)))]
        if kind.startswith("timeit") and (len(args) > 1 or "setup" in kwargs):
            code.append(args[1] if len(args) > 1 else kwargs["setup"])
        values = frozenset().union(*code)
        strings = sorted(v[1] for v in values if v[0] == "s" and v[2])
        seen = len(strings) + sum(1 for v in values if v[0] in ("f", "m"))  # timeit(lambda: ...): program code
        for text in strings:
            inner = self.sub(text, "eval" if kind == "eval()" else "exec", self.s)
            if inner is None:
                continue
            for f in inner["findings"]:
                self.add(f["rule"], f["severity"], node, f"inside {kind}: {f['message']}")
            self.writes.update(inner["writes"])
            self.reads.update(inner["reads"])
            self.possible_writes = self.possible_writes or inner["possible_writes"]
        if seen < len(values) or not values:
            # Code the analysis cannot see can import the control system itself: near it or not.
            self.possible_write(
                node,
                "dynamic",
                f"possible EPICS write: `{callee}(...)` runs code the analysis cannot see",
                "epics-dynamic",
                HIGH,
            )

    def dynamic_attribute(self, node: Any, callee: Any, objs: frozenset, names: frozenset, verb: str) -> None:
        computed = any(not (v[0] == "s" and v[2]) for v in names)
        if not computed:
            return
        on_cs = any(
            (o[0] == "p" and model.cs_root(o[1]) and not model.through_data_call(o[1])) or o[0] == "d" or _widened_cs(o)
            for o in objs
        )
        unknown = any(o[0] in ("u", "g") for o in objs)
        if on_cs:
            self.possible_write(
                node,
                "dynamic",
                f"possible EPICS write: `{callee}(...)` {verb} an attribute of a "
                "control-system object by a computed name",
                "epics-dynamic",
                HIGH,
            )
        elif unknown and self.s.near_cs:
            self.possible_write(
                node,
                "dynamic",
                f"possible EPICS write: `{callee}(...)` {verb} an attribute by a "
                "computed name on an object the analysis cannot resolve, in a program that uses the "
                "control system",
                "epics-dynamic",
                MEDIUM,
            )

    # ---- attribute stores and loads ----------------------------------------------------------
    def attribute_store(self, node: Any, receivers: frozenset, attr: str, spelled: Any) -> None:
        for r in ordered(receivers):
            if r[0] == "i":  # an instance of a subclass of PV, Motor ...: as one of the library class
                r = next(
                    (("p", b[1] + "()") for b in self.s.class_chain(r[1]) if b[0] == "p" and model.cs_root(b[1])), r
                )
            if r[0] == "p" and model.cs_root(r[1]):
                path = r[1]
                while path.endswith("[]") and path.rstrip("[]").endswith("()"):  # an element of a handle
                    path = path[:-2]  # taken as a container (itertools.product(motors, ...)): the handle
                shown = model.display(path)
                if not (path.endswith(("()", "[]"))):
                    if model.through_data_call(path):
                        continue  # an attribute of data read from the control system (caget(...).T.shape = ...)
                    self.possible_write(
                        node,
                        f"{shown}.{attr}",
                        f"possible EPICS write: `{spelled}` replaces {shown}.{attr} in the library",
                        "epics-dynamic",
                        HIGH,
                    )
                    continue
                allowed = model.WRITE_ATTRIBUTES.get(path)
                if allowed is not None and (attr in allowed or ("*" in allowed and not attr.startswith("_"))):
                    self.write(
                        node,
                        f"{shown}.{attr}",
                        f"EPICS write: `{spelled}` assigns {shown}.{attr}, which puts the value",
                    )
            elif r[0] == "d":
                self.possible_write(
                    node,
                    "dynamic",
                    f"possible EPICS write: `{spelled}` assigns an attribute of "
                    f"something reached by dynamic access ({r[1]})",
                    "epics-dynamic",
                    HIGH,
                )
            elif (
                r[0] == "u" and attr in ("value", "char_value") and (self.s.near_cs if len(r) == 2 else _widened_cs(r))
            ):
                self.possible_write(
                    node,
                    f"?.{attr}",
                    f"possible EPICS write: `{spelled}` assigns `{attr}` on an "
                    "object the analysis cannot resolve, in a program that uses the control system",
                )

    def untracked_store(self, target: Any, receivers: frozenset, values: frozenset) -> None:
        """A write function stored where the analysis does not follow it (globals(), a module, a
        __dict__ ...) can be called from there under another name."""
        if all(r[0] in ("k", "i", "c") or (r[0] == "p" and model.cs_root(r[1])) for r in receivers):
            return
        for name in self.write_values(values):
            self.write(
                target,
                name,
                f"EPICS write: `{_src(target)} = ...` stores {name} where the analysis does not "
                "follow it (a namespace, a module or an object it does not track), to be called from there",
            )

    def defined_writes(self) -> None:
        """In code run by exec(): a name it binds to a write function is the caller's from then on
        (exec("w = caput"); w(...))."""
        module = self.s.c.module
        for name in sorted(module.locals):
            for write in self.write_values(frozenset(module.bind.get(name, EMPTY))):
                self.write(
                    None,
                    write,
                    f"EPICS write: the code binds `{name}` to {write} in the namespace of the program that runs it",
                )

    def check_stores_and_loads(self) -> None:
        s = self.s
        for scope, target, _spec in s.c.attr_stores:
            receivers = s.ev(target.value, scope)
            self.attribute_store(target, receivers, target.attr, _Lazy(target, " = ..."))
            self.untracked_store(target, receivers, s.spec(_spec, scope))
        for scope, target, _spec in s.c.item_stores:
            self.untracked_store(target, s.ev(target.value, scope), s.spec(_spec, scope))
        for scope, node in s.c.attr_loads:
            for r in ordered(s.ev(node.value, scope)):
                if r[0] == "p" and model.cs_root(r[1]) and self.is_handle(r[1]):
                    shown = model.display(r[1])
                    self.read(
                        node,
                        f"{shown}.{node.attr}",
                        lambda node=node, shown=shown: f"EPICS read: `{_src(node)}` reads {shown}.{node.attr}",
                    )
                elif r[0] == "p" and r[1] == "os" and node.attr in ("environ", "environb"):
                    pass
        for scope, node in s.c.sub_loads:
            if any(v[0] == "p" and v[1] in ("os.environ", "os.environb") for v in s.ev(node.value, scope)):
                for key in ordered(s.ev(node.slice, scope)):
                    if key[0] == "s" and model.SECRET_ENV.search(key[1]):
                        self.add("secrets-access", HIGH, node, f"reads the secret environment variable {key[1]!r}")
        for scope, node in s.c.iters:
            if any(v[0] == "p" and v[1] in ("os.environ", "os.environb") for v in s.ev(node, scope)):
                self.add("secrets-access", MEDIUM, node, "iterates over the whole environment (os.environ)")
        for node, path in s.c.imports:
            root = path.split(".", 1)[0]
            if root in model.NATIVE_ROOTS:
                self.add("ctypes", HIGH, node, f"imports {path}: native code can bypass every guard")
            elif self.extends_path and not _installed(root):
                self.possible_write(
                    node,
                    "import",
                    f"possible EPICS write: imports {root}, which is not an installed "
                    "library, in a program that adds to sys.path: its code is not in the program",
                    "epics-dynamic",
                    HIGH,
                )

    # ---- processes ---------------------------------------------------------------------------
    def command_line(self, node: Any, callee: Any, path: str, args: list, kwargs: dict) -> None:
        strings: list[str] = []
        for values in [*args, *kwargs.values()]:
            for v in values:
                if v[0] == "s":
                    strings.append(v[1])
                elif v[0] == "k":
                    for m in self.s.containers.get(v[1], EMPTY):
                        if m[0] == "s":
                            strings.append(m[1])
        index = 1 if path.startswith(("os.spawn", "posix.spawn")) else 0  # os.spawnlp(mode, file, ...)
        lines = [] if _named_program(path) else (self.command_lines(node, index) or [])
        # Why the commands are not all in the program's text (None: they are), line by line.
        program = _named_program(path)
        whys = [_hidden([frozenset({program})], 0)] if program else [_hidden(line, 0) for line in lines]
        # The tools it runs: every word of its command lines and strings (shell syntax, and wrappers
        # the analysis does not list, can put a tool anywhere), unless every command line is plainly
        # run by a program that never runs its arguments (grep caput putlog, git log --grep=caput:
        # model.CLI_INERT); then only what a shell would read from standard input (input=).
        inert = (
            bool(lines)
            and not path.startswith(("os.exec", "os.spawn", "posix."))
            and all(why is None and _inert(line) for why, line in zip(whys, lines, strict=False))
        )
        tools = set() if inert else {w.rsplit("/", 1)[-1] for line in lines for word in line for w in word if w}
        for text in [v[1] for v in kwargs.get("input", EMPTY) if v[0] == "s"] if inert else strings:
            # the shell drops quotes and backslashes: c""aput is caput
            for word in model.CLI_WORD.findall(
                text.replace("\x00", " ").replace('"', "").replace("'", "").replace("\\", "")
            ):
                tools.add(word.rsplit("/", 1)[-1])
        writes = sorted(tools & model.CLI_WRITE_TOOLS)
        awk_runs = not tools.isdisjoint(_AWK) and any(_AWK_COMMANDS.search(t) for t in strings)
        reads = sorted(tools & model.CLI_READ_TOOLS)
        for tool in writes:
            self.write(node, f"cli:{tool}", f"EPICS write: `{callee}(...)` runs the command-line tool {tool}")
        for tool in reads:
            self.read(node, f"cli:{tool}", f"EPICS read: `{callee}(...)` runs the command-line tool {tool}")
        for text in sorted(strings):
            if "\x00" not in text and ("import" in text or "(" in text) and len(text) < 100_000:
                inner = self.sub(text, "exec", None)
                if inner is not None and (inner["writes"] or inner["reads"]):
                    for f in inner["findings"]:
                        if f["rule"].startswith("epics"):
                            self.add(
                                f["rule"], f["severity"], node, f"in Python run by `{callee}(...)`: {f['message']}"
                            )
                    self.writes.update(inner["writes"])
                    self.reads.update(inner["reads"])
        if writes:
            return
        hidden = next((why for why in whys if why), None)
        if hidden is None and awk_runs:
            hidden = "runs awk code that starts commands (system(), a pipe), which the analysis does not read"
        if hidden:
            self.possible_write(node, "cli", f"possible EPICS write: `{callee}(...)` {hidden}")

    def command_lines(self, node: Any, index: int) -> list[list[frozenset]] | None:
        """The command lines a process call may run, each a list of words, each word the set of
        texts it may be ("" where not known): a list display word by word (`["caget"] + names`: its
        known head), a command string cut at ; & | $( and `; None: no command argument."""
        if type(node) is not ast.Call or self.scope is None:
            return None
        arg = (
            node.args[index]
            if len(node.args) > index
            else next(
                (k.value for k in node.keywords if k.arg in ("args", "cmd", "command", "file", "path", "program")), None
            )
        )
        if arg is None:  # run(**options): the command is in a mapping the analysis does not read
            return [[_UNKNOWN_WORD]] if any(k.arg is None for k in node.keywords) else None
        executable = next((k.value for k in node.keywords if k.arg == "executable"), None)
        if executable is not None:  # Popen(..., executable=x) runs x, whatever the command says
            program = frozenset(_word_texts(self.s.ev(executable, self.scope)))
            shell = any(k.arg == "shell" for k in node.keywords)
            if not (shell and program <= model.CLI_SHELLS):  # a shell with shell=True runs the command string
                return [[program]]
        tail: list[frozenset] = []
        if type(arg) is ast.BinOp and type(arg.op) is ast.Add and type(arg.left) in (ast.List, ast.Tuple):
            arg, tail = arg.left, [_UNKNOWN_WORD]
        if type(arg) in (ast.List, ast.Tuple):
            words = []
            for e in arg.elts:
                if type(e) is ast.Starred:
                    words.append(_UNKNOWN_WORD)
                    continue
                words.append(frozenset(_word_texts(self.s.ev(e, self.scope))))
            return [words + tail] if words else [[_UNKNOWN_WORD]]
        if type(arg) is ast.Starred:
            return [[_UNKNOWN_WORD]]
        values = self.s.memo.get(arg) if type(arg) not in (ast.Name, ast.Constant) else self.s.ev(arg, self.scope)
        out: list[list[frozenset]] = []
        for v in ordered(values or EMPTY):
            if v[0] == "s":
                text = v[1]
                texts = text[len(MERGED) :].split("\n") if text.startswith(MERGED) else [text]
                for t in texts:
                    out.extend(_command_segments(t))
            elif v[0] == "p" and v[1] == "sys.executable":
                out.append([frozenset({"python"})])
            elif v[0] == "k" and v[1] in self.s.positions:  # a tuple, or the words of str.split(): in order
                out.append(
                    [frozenset(_word_texts(frozenset(self.s.containers.get(r, EMPTY)))) for r in self.s.positions[v[1]]]
                )
            elif v[0] == "k":  # a list built elsewhere: its program is one of its known words (order is lost)
                members = sorted(
                    _word_texts(frozenset(m for m in self.s.containers.get(v[1], EMPTY) if m[0] == "s" and m[2])) - {""}
                )
                programs = [m for m in members if not m.startswith(("-", "/", "~", ".")) and "/" not in m]
                out.append([frozenset(programs or members or {""}), *(frozenset({m}) for m in members)])
            else:  # a value that may be anything: the program is not known
                out.append([_UNKNOWN_WORD])
        return out or [[_UNKNOWN_WORD]]

    # ---- files and secrets -------------------------------------------------------------------
    def classify(self, text: str | None, complete: bool = True) -> str:
        if text is None:
            return "unknown"
        if text.startswith(MERGED):
            # One of several texts (solve.merge_many): the most concerning of them.
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
            self.file_target(node, callee, frozenset({("po", text)}), True)
        elif name == "open":
            mode_values = args[0] if args else kwargs.get("mode", EMPTY)
            writing = bool(mode_values) and any(
                not (v[0] == "s" and v[2]) or any(c in v[1] for c in "wax+") for v in mode_values
            )
            self.file_target(node, callee, frozenset({("po", text)}), writing)
        elif name in FILE_READ_METHODS:
            self.file_target(node, callee, frozenset({("po", text)}), False)

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
