"""Pass 3: turn the solved values into findings (control-system writes and reads, risky operations).

The EPICS rules: what is written and read, through which calls, attributes and stores. Checker
also has the rules of risky operations (risks.py) and of command lines (cli.py) as mixins."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from . import model
from .cli import CommandLineRules
from .model import HIGH, INFO, MEDIUM
from .risks import RISK_ROOTS, SYS_PATH_MUTATORS, RiskRules, installed, risky, starts_code
from .solve import Solver
from .values import (
    EMPTY,
    Const,
    Container,
    ContainerMethod,
    Dynamic,
    Globals,
    Instance,
    Lib,
    PathMethod,
    PathObj,
    Str,
    StrMethod,
    Unknown,
    UnknownFrom,
    ordered,
    short_source,
    widened_cs,
)


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


# An instance of a pyepics device class itself (epics.devices.Scaler(), epics.devices.mca.MCA()), not
# something one of its methods returned (mca.get_rois()[0].LO is data).
_DEVICE_INSTANCE = re.compile(r"^epics\.devices(\.[a-z_0-9]+)*\.[A-Za-z_]\w*\(\)$")


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


_NOT_LOCAL = frozenset({ContainerMethod, StrMethod, Const, Str, PathObj, Globals, Instance, Container})


class _Lazy:
    """The source text of a node (and a suffix), made only when a message needs it."""

    __slots__ = ("node", "suffix", "text")

    def __init__(self, node: Any, suffix: str = "") -> None:
        self.node = node
        self.suffix = suffix
        self.text: str | None = None

    def __str__(self) -> str:
        if self.text is None:
            self.text = short_source(self.node) + self.suffix
        return self.text

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class Checker(RiskRules, CommandLineRules):
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
        """Whether a path must stay exact when the solver widens values that grow (values.widen_chains):
        a write, a process or dynamic-code call, or a control-system handle (whose methods and
        attribute stores may write). Finitely many: the length limits still apply to them. (Native
        and network calls stay found when widened: see widened_call.)"""
        if "write" in self.path_kind(path) or path in model.WRITE_ATTRIBUTES or path in model.WRITE_METHOD_PREFIX:
            return True
        return starts_code(path) or (model.cs_root(path) and self.is_handle(path))

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
                "target": short_source(pv_node) if pv_node is not None else None,
                "value": short_source(value_node) if value_node is not None else None,
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
            t = type(f)
            if t is Lib:
                local_only = False
                self.call_path(node, callee, f.path, args, kwargs)
            elif t is Unknown or t is UnknownFrom:
                name = f.name
                local_only = False
                if t is UnknownFrom:
                    self.widened_call(node, callee, f.root, name, args, kwargs)
                if name in model.DISTINCT_WRITE_METHODS:
                    self.write(node, name, f"control-system write: `{callee}(...)` calls a `{name}` method")
                elif name in model.DISTINCT_READ_METHODS:
                    self.read(
                        node,
                        name,
                        lambda name=name: f"control-system read: `{callee}(...)` calls a `{name}` method",
                    )
                elif name in model.UNRESOLVED_WRITE_METHODS and self.s.near_cs and type(f) is Unknown:
                    self.possible_write(
                        node,
                        f"?.{name}",
                        f"possible EPICS write: `{callee}(...)` calls `{name}` on an object the analysis "
                        "cannot resolve, in a program that uses the control system",
                    )
                elif name in model.SAVE_METHODS and args:
                    self.file_target(node, callee, args[0], True, quiet_unknown=True)
            elif t is Dynamic:
                reason = f.reason
                local_only = False
                self.possible_write(
                    node,
                    "dynamic",
                    f"possible EPICS write: `{callee}(...)` calls something reached by dynamic access ({reason})",
                    "epics-dynamic",
                    HIGH,
                )
            elif t is PathMethod:
                local_only = False
                self.path_method(node, callee, f.text, f.name, args, kwargs)
            elif t in _NOT_LOCAL:  # (functions of the program, classes, properties: local)
                local_only = False
        if not local_only:
            self.escapes(node, callee, fvals, args, kwargs)

    def widened_call(self, node: Any, callee: Any, root: str, name: str | None, args: list, kwargs: dict) -> None:
        """A call of a value reached from the library `root` by a chain the analysis stopped following
        (values.widen_chains): a control-system library's is a possible write when it may be a write
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
                or starts_code(path)
                or model.NETWORK.match(path)
                or model.RAW_NETWORK.match(path)
            ):
                self.risky_call(node, callee, path, model.display(path), args, kwargs)

    def call_path(self, node: Any, callee: Any, path: str, args: list, kwargs: dict) -> None:
        if path in SYS_PATH_MUTATORS:
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
            root in RISK_ROOTS or path.rsplit(".", 1)[-1] in model.SAVE_METHODS or path.endswith(".__setattr__")
        ) and risky(path, root):
            kinds.add("other")
        return frozenset(kinds)

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
            (o[0] == "p" and model.cs_root(o[1]) and not model.through_data_call(o[1])) or o[0] == "d" or widened_cs(o)
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
                r = next((Lib(b[1] + "()") for b in self.s.class_chain(r[1]) if b[0] == "p" and model.cs_root(b[1])), r)
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
            elif r[0] == "u" and attr in ("value", "char_value") and (self.s.near_cs if len(r) == 2 else widened_cs(r)):
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
                f"EPICS write: `{short_source(target)} = ...` stores {name} where the analysis does not "
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
                        lambda node=node, shown=shown: f"EPICS read: `{short_source(node)}` reads {shown}.{node.attr}",
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
            elif self.extends_path and not installed(root):
                self.possible_write(
                    node,
                    "import",
                    f"possible EPICS write: imports {root}, which is not an installed "
                    "library, in a program that adds to sys.path: its code is not in the program",
                    "epics-dynamic",
                    HIGH,
                )
