"""Library models: what builtins and library functions do to the values passed to them
(getattr, functools.partial, os.path.join, threading.Thread(target=...) ...), and what a library
object that holds things (a queue, a pandas Series) keeps. MODELS maps a call path to its model,
one entry a line; Solver.apply calls it with the solver, the call node, its scope and the argument
value sets."""

from __future__ import annotations

import ast
import functools
import itertools
import re
from typing import TYPE_CHECKING, Any

from . import model
from .collect import Scope
from .values import (
    ANY_ATTRIBUTE,
    CONST,
    CONST_SET,
    EMPTY,
    GLOBALS,
    MAX_STRINGS,
    MERGED,
    UNK,
    UNK_SET,
    UNKNOWN_STRING,
    Class,
    Container,
    Dynamic,
    Lib,
    PathObj,
    Property,
    Spread,
    Str,
    const_strings,
    norm,
    ordered,
    short_source,
    unknown_from,
)

if TYPE_CHECKING:
    from .solve import Solver

# A library object that holds things (queue.Queue(), tqdm(pvs), pandas.Series(motors)) is also a
# container of its own (key ("lib", where it is made): Solver.library_object): filled by the
# arguments it is made from and by LIBRARY_STORES, handed back by iteration, subscripts,
# LIBRARY_FETCHES and LIBRARY_VIEWS, and to the functions its mapping methods (apply, map) call.
# fmt: off
LIBRARY_CONTAINERS = frozenset({"Queue", "LifoQueue", "PriorityQueue", "SimpleQueue", "JoinableQueue", "Series",
                                "DataFrame", "Index", "UserList", "UserDict", "SortedList", "SortedDict", "WeakSet",
                                "WeakValueDictionary", "tqdm", "trange", "track", "progressbar", "alive_it"})
# fmt: on
LIBRARY_STORES = frozenset({"put", "put_nowait", "append", "appendleft", "add", "insert", "push"})
LIBRARY_BULK_STORES = frozenset({"extend", "extendleft", "update"})
LIBRARY_FETCHES = frozenset({"get", "get_nowait", "pop", "popleft", "popitem", "__next__", "item", "first", "last"})
# fmt: off
LIBRARY_VIEWS = frozenset({"tolist", "to_list", "to_numpy", "copy", "dropna", "head", "tail", "unique", "sort_index",
                           "sort_values", "values", "iloc", "loc", "at", "iat", "array", "queue", "T"})
# fmt: on


# ---- builtins and library functions that move values -----------------------------------------
def _sp_getattr(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    if len(args) < 2:
        return {UNK}
    out: set = set()
    names = const_strings(args[1])
    for obj in ordered(args[0]):
        for n in names:
            out.update(s.attr(obj, n))
    if len(names) < len(args[1]):
        computed = [v for v in args[1] if not (v[0] == "s" and v[2])]
        rest = []
        for obj in ordered(args[0]):
            known = s.attribute_names(obj[1]) if obj[0] == "i" else None
            if known is None:
                rest.append(obj)
                continue
            # An instance of a class of the program's own: the attributes it has whose names fit.
            for n in sorted(known):
                if any(_may_be(v, n) for v in computed):
                    out.update(s.attr(obj, n))
        if not rest:
            pass
        elif all(_plain_library(o) for o in rest):
            out.add(UNK)  # an attribute of numpy, a logger, a string ...: not a way to the control system
        elif not s.near_cs and not any((o[0] == "p" and not _plain_library(o)) or o[0] == "d" for o in rest):
            out.add(UNK)  # the program's own objects, in a program that never reaches the control system
        else:
            out.add(Dynamic(f"`{short_source(node)}` reads an attribute whose name is computed"))
    if len(args) > 2:
        out.update(args[2])
    return out


def _may_be(v: tuple, name: str) -> bool:
    """Whether a value that is not a known string (an f-string with an unknown part, anything) may
    be the attribute name `name`."""
    if v[0] != "s" or v[1].startswith(MERGED):
        return True
    return _name_pattern(v[1]).match(name) is not None


@functools.lru_cache(maxsize=2_000)
def _name_pattern(text: str) -> Any:
    return re.compile(
        "".join(".*" if part == "\x00" else re.escape(part) for part in re.split("(\x00)", text)) + "$", re.S
    )


@functools.lru_cache(maxsize=20_000)
def followed_library_call(path: str) -> bool:
    """Whether a call of the library path with arguments goes through Solver.library_call (not a
    control-system call, nor one of the plain library calls that call back and hand back nothing)."""
    return not (
        model.cs_root(path)
        or path in model.PLAIN_BUILTINS
        or path.split(".", 1)[0].split("(", 1)[0] in model.PLAIN_CALL_ROOTS
    )


# fmt: off
_BUILTIN_GATEWAY_CALLS = ("builtins.__import__", "builtins.eval", "builtins.exec", "builtins.vars", "builtins.globals",
                          "builtins.locals", "builtins.getattr", "builtins.type", "builtins.compile", "builtins.super")
# fmt: on


def _plain_library(v: tuple) -> bool:
    """Whether v is a value whose attributes, whatever their name, lead neither to the control system
    nor to running code: a string or a number, or an object of a library that is neither."""
    k = v[0]
    if k == "p":
        root = v[1].split(".", 1)[0].split("(", 1)[0].split("[", 1)[0]
        if root == "builtins" and "(" in v[1] and not v[1].startswith(_BUILTIN_GATEWAY_CALLS):
            return True  # open(...), str(...), list(...): a file, a string, a list
        return (not model.cs_root(v[1]) or model.through_data_call(v[1])) and root not in model.DYNAMIC_GATEWAYS
    if k == "k":  # what a library object holds (Solver.library_object): the object is the library's
        return v[1][0] == "lib"
    return k == "s" or k == "const" or k == "po"


def _sp_type(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # type(x): the class of x (type(pv).put(pv, 1) is PV.put)
    if len(args) != 1:
        return {UNK}
    out: set = set()
    for v in args[0]:
        if v[0] == "p" and v[1].endswith("()"):
            out.add(Lib(v[1][:-2]))
        elif v[0] == "i":
            out.add(Class(v[1]))
        elif v[0] == "u":
            out.add(unknown_from(v))
        else:
            out.add(CONST)
    return out


def _sp_super(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # super() in a method of a subclass of a library class: an instance of that class (super().put(...)
    # in a PV subclass)
    sc = scope
    while sc is not None and sc.kind != "function":
        sc = sc.parent
    if sc is None:
        return {UNK}
    cid = s.c.funcs[sc.owner].cid
    if cid < 0:
        return {UNK}
    # Library bases only: a base class of the program's own is not followed through super() (its
    # methods see `self` as they are; following it as another instance kept argparse from a fixpoint).
    out: set = {Lib("builtins.super()")}
    for entry in s.class_chain(cid)[1:]:
        if entry[0] == "p":
            out.add(Lib(norm(entry[1] + "()")))
    return out


def _sp_import(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    values = args[0] if args else kwargs.get("name", EMPTY)
    names = const_strings(values)
    out: set = set()
    for n in names:
        if model.cs_root(n):
            s.reach_cs()
        root = n if node.func and _is_import_module(node) else n.split(".", 1)[0]
        out.add(Lib(norm(root)))
    if len(names) < len(values) or not values:
        out.add(Dynamic(f"`{short_source(node)}` imports a module whose name is computed"))
    return out


def _is_import_module(node: Any) -> bool:
    f = node.func
    return (type(f) is ast.Attribute and f.attr == "import_module") or (type(f) is ast.Name and f.id == "import_module")


def _sp_second(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    """typing.cast(T, v): v."""
    return set(args[1]) if len(args) > 1 else {UNK}


def _sp_first(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    return set(args[0]) if args else {UNK}


def _sp_partial(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # functools.partial(f, ...) calls f later with those arguments.
    if not args:
        return {UNK}
    for f in ordered(args[0]):
        s.apply(f, node, scope, args[1:], kwargs)
    return set(args[0])


def _sp_container_of_elements(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    members: set = set()
    for a in args:
        members.update(s.elements(a))
    for v in kwargs.values():
        members.update(v)
    return set(s.container(node, members))


def _sp_iter(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # iter(xs); iter(f, sentinel): what f returns, again and again
    if len(args) == 2 and type(args[0]) is not Spread:
        results: set = set()
        for f in ordered(args[0]):
            results.update(s.apply(f, node, scope, [], {}))
        return set(s.container(node, results))
    return _sp_container_of_elements(s, node, scope, args, kwargs)


def _sp_fromkeys(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # dict.fromkeys(keys, value): every key holds value
    keys = s.elements(args[0]) if args else EMPTY
    return set(s.container(node, args[1] if len(args) > 1 else CONST_SET, keys))


def _sp_chainmap(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # collections.ChainMap(a, b): looks keys up in the dicts it is given (they stay the same objects)
    out = {v for a in args for v in a if v[0] == "k"}
    return out or set(s.container(node, EMPTY, EMPTY))


def _sp_itemgetter_call(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # operator.itemgetter(k)(d): a member of d
    return set(s.members(args[0])) if args else {UNK}


def _sp_field(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # a dataclass field: its instances get the default, or what default_factory() returns
    out: set = set(kwargs.get("default", EMPTY))
    for f in ordered(kwargs.get("default_factory", EMPTY)):
        out.update(s.apply(f, node, scope, [], {}))
    return out or {CONST}


def _sp_replace(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # dataclasses.replace(obj, name=value): a copy of obj with those fields
    for name, values in kwargs.items():
        if name is not None:
            for obj in ordered(args[0] if args else EMPTY):
                if obj[0] == "i":
                    s.store_attribute(obj[1], name, values)
            s.add(s.attr_table, name, values)
    return set(args[0]) if args else {UNK}


def _sp_setattr(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # setattr(obj, "name", v): obj.name = v; with a computed name, obj may have any attribute
    if len(args) < 3:
        return {CONST}
    names = const_strings(args[1])
    for obj in ordered(args[0]):  # on the program's own objects (what it does to others, it does not tell)
        if obj[0] == "i" or obj[0] == "c":
            for name in names:
                if not name.startswith("__"):
                    s.set_attribute(obj, name, args[2])
    if len(names) < len(args[1]) and not s.any_attribute:
        s.any_attribute = True  # see attribute_names: what read the flag is evaluated again
        s.add(s.containers, ANY_ATTRIBUTE, CONST_SET)
    return {CONST}


def _sp_property(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # property(getter) in a class body: reading the attribute on an instance calls getter
    getters = args[0] if args else kwargs.get("fget", EMPTY)
    return {Property(f[1]) for f in getters if f[0] == "f"} or {UNK}


def _sp_element(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    return set(s.elements(args[0])) if args else {UNK}


def _sp_dict(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # dict(mapping or pairs, **kw), OrderedDict(...), defaultdict(factory, ...)
    made = s.container(node, EMPTY, EMPTY)
    key = next(iter(made))[1]
    skip = 1 if short_source(node.func).endswith("defaultdict") else 0
    if skip and args:  # defaultdict(factory): a missing key gets what factory() returns
        for f in ordered(args[0]):  # (a function of the program's or the control system's: list()
            if f[0] in ("f", "m") or (f[0] == "p" and model.cs_root(f[1])):  # made here would be this dict)
                s.add(s.containers, key, s.apply(f, node, scope, [], {}))
    s.fill_dict(key, [a for a in args[skip:] if type(a) is not Spread], kwargs)
    if any(type(a) is Spread for a in args):
        s.add(s.containers, ("keys", key), UNK_SET)
        s.add(s.containers, key, UNK_SET)
    return set(made)


def _sp_sorted(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # sorted(xs, key=f): f is called with each element
    if args and "key" in kwargs:
        elements = s.elements(args[0])
        for f in ordered(kwargs["key"]):
            s.apply(f, node, scope, [elements], {})
    return _sp_container_of_elements(s, node, scope, args[:1], {})


def _sp_filter(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # filter(f, xs): f is called with each element; the result holds some of them
    if len(args) < 2:
        return _sp_container_of_elements(s, node, scope, args, kwargs)
    elements = s.elements(args[1])
    for f in ordered(args[0]):
        s.apply(f, node, scope, [elements], {})
    return set(s.container(node, elements))


def _sp_zip(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # zip(a, b, ...): pairs (a_i, b_i), each name of `for x, y in zip(...)` bound to its own part.
    if not args or any(type(a) is Spread for a in args):
        return _sp_container_of_elements(s, node, scope, args, kwargs)
    parts = [s.elements(a) for a in args]
    return {Container(s.pair_of(node, parts))}


def _sp_enumerate(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    if not args or type(args[0]) is Spread:
        return _sp_container_of_elements(s, node, scope, args, kwargs)
    return {Container(s.pair_of(node, [CONST_SET, s.elements(args[0])]))}


def _sp_eval(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # eval("epics.caput"): the value of the expression (its calls are checked as code by the checker)
    if not args:
        return {UNK}
    out: set = set()
    for v in ordered(args[0]):
        tree = s.eval_tree(v[1]) if v[0] == "s" and v[2] else None
        out.update(s.ev(tree, scope) if tree is not None else {UNK})
    return out


def _sp_compile(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # compile(source, ...): exec(compile(src, ...)) runs src; the checker sees the source in exec
    return set(args[0] if args else kwargs.get("source", UNK_SET))


def _sp_getitem(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # operator.getitem(vars(epics), "caput"): as a subscript
    if len(args) < 2:
        return {UNK}
    keys = const_strings(args[1])
    out: set = set()
    for v in args[0]:
        if v[0] == "k":
            out.update(s.get(s.containers, v[1]) or UNK_SET)
        elif v[0] == "p" and v[1].endswith(".__dict__"):
            base = v[1][: -len(".__dict__")]
            out.update(Lib(norm(f"{base}.{k}")) for k in keys)
            if len(keys) < len(args[1]):
                out.add(Dynamic(f"`{short_source(node)}` looks a name up with a computed key"))
        elif v[0] == "g":
            for k in keys:
                out.update(s._module_name(k))
        else:
            out.add(unknown_from(v))
    return out or {UNK}


def _sp_vars(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    if not args:
        return {GLOBALS}
    out: set = set()
    for v in args[0]:
        if v[0] == "p":
            out.add(Lib(v[1] + ".__dict__"))
        elif v[0] == "i":
            out.add(s.instance_dict(v[1]))
        else:
            out.add(UNK)
    return out


def _sp_globals(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    return {GLOBALS}


def _sp_path(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    if not args:
        return {PathObj(".")}
    out: set = set()
    for v in args[0]:
        if v[0] == "s":
            out.add(PathObj(v[1] if v[2] else v[1].split("\x00", 1)[0] + "\x00"))
        elif v[0] == "po":
            out.add(v)
        else:
            out.add(PathObj(None))
    return out


def _sp_path_home(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    return {PathObj("~" if "home" in short_source(node.func) else ".")}


def _sp_join(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    if not args:
        return {CONST}
    # Every combination of the parts' possible strings (a part that may be something else: an
    # unknown part), up to MAX_STRINGS of them; past that, the first part and an unknown rest.
    parts = []
    for a in args[1:]:
        texts = {(v[1], v[2]) for v in a if v[0] == "s"}
        if not texts or len(texts) < len(a):
            texts.add(("\x00", False))
        parts.append(sorted(texts))
    combos = 1
    for texts in parts:
        combos *= len(texts)
    out: set = set()
    for first in args[0]:
        if first[0] != "s":  # os.path.join(unknown, "caput"): what follows stays known
            first = UNKNOWN_STRING
        if combos > MAX_STRINGS:
            out.add(Str(first[1] + "/\x00", False))
        else:
            for combo in itertools.product(*parts):
                tail = "/".join(text for text, _ in combo)
                complete = first[2] and all(c for _, c in combo)
                out.add(Str(first[1] + ("/" + tail if tail else ""), complete))
    return out


def _sp_shlex_join(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # shlex.join(words): the command line of those words
    return s.string_method(node, scope, Str(" ", True), "join", args, kwargs)


def _sp_getenv(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # os.environ.get(name, default), os.getenv(name, default): a string not known, or the default
    return {UNKNOWN_STRING, *(args[1] if len(args) > 1 else kwargs.get("default", EMPTY))}


def _sp_expanduser(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    out = {v if v[0] in ("s", "po") else CONST for v in args[0]} if args else set()
    return out or {CONST}


def _sp_map(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    if not args:
        return {UNK}
    elems = [s.elements(a) for a in args[1:]]
    results: set = set()
    for f in ordered(args[0]):
        results.update(s.apply(f, node, scope, elems, {}))
    return set(s.container(node, results))


def _sp_split(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # shlex.split(text): the words of text
    if not args:
        return {UNK}
    out: set = set()
    for v in ordered(args[0]):
        out.update(s.string_method(node, scope, v, "split", [], {}))
    return out


def _sp_call_target(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # threading.Thread(target=f, args=(...)), Timer(interval, f, args=...) and friends call f.
    given = kwargs.get("args", UNK_SET)
    shown = next((k.value for k in node.keywords if k.arg == "args"), None) if type(node) is ast.Call else None
    parts = s.literal_parts(shown, scope) if shown is not None else None
    passed: list = parts if parts is not None else [Spread(s.elements(given))]  # args=(q, pv): by position
    if "kwargs" in kwargs:
        passed.append(Spread(s.members(kwargs["kwargs"])))
    targets = [kwargs.get(key, EMPTY) for key in ("target", "function", "fn", "callback", "func")]
    targets.extend(a for a in args if any(v[0] in ("f", "m", "c", "p") for v in a))
    for values in targets:
        for f in ordered(values):
            if f[0] != "p" or model.cs_root(f[1]):
                s.apply(f, node, scope, passed, {})
    return {Lib("threading.Timer()" if short_source(node.func).endswith("Timer") else "threading.Thread()")}


MODELS = {
    "builtins.getattr": _sp_getattr,
    "builtins.eval": _sp_eval,
    "builtins.compile": _sp_compile,
    "operator.getitem": _sp_getitem,
    "builtins.type": _sp_type,
    "builtins.super": _sp_super,
    "builtins.__import__": _sp_import,
    "importlib.import_module": _sp_import,
    "importlib.__import__": _sp_import,
    "importlib.reload": _sp_first,
    "builtins.vars": _sp_vars,
    "builtins.globals": _sp_globals,
    "builtins.staticmethod": _sp_first,
    "builtins.classmethod": _sp_first,
    "builtins.property": _sp_property,
    "builtins.setattr": _sp_setattr,
    "builtins.locals": _sp_globals,
    "functools.partial": _sp_partial,
    "builtins.list": _sp_container_of_elements,
    "builtins.tuple": _sp_container_of_elements,
    "builtins.set": _sp_container_of_elements,
    "builtins.frozenset": _sp_container_of_elements,
    "builtins.sorted": _sp_sorted,
    "builtins.reversed": _sp_container_of_elements,
    "builtins.dict": _sp_dict,
    "builtins.zip": _sp_zip,
    "builtins.enumerate": _sp_enumerate,
    "builtins.filter": _sp_filter,
    "builtins.iter": _sp_iter,
    "builtins.next": _sp_element,
    "builtins.map": _sp_map,
    "types.SimpleNamespace": _sp_container_of_elements,
    "collections.namedtuple": _sp_container_of_elements,
    "collections.OrderedDict": _sp_dict,
    "collections.defaultdict": _sp_dict,
    "collections.deque": _sp_container_of_elements,
    "builtins.dict.fromkeys": _sp_fromkeys,
    "collections.OrderedDict.fromkeys": _sp_fromkeys,
    "collections.ChainMap": _sp_chainmap,
    "operator.itemgetter()": _sp_itemgetter_call,
    "dataclasses.field": _sp_field,
    "dataclasses.replace": _sp_replace,
    "copy.copy": _sp_first,
    "copy.deepcopy": _sp_first,
    "typing.cast": _sp_second,
    "pathlib.Path": _sp_path,
    "pathlib.PurePath": _sp_path,
    "pathlib.PosixPath": _sp_path,
    "pathlib.Path.home": _sp_path_home,
    "pathlib.Path.cwd": _sp_path_home,
    "os.path.join": _sp_join,
    "os.path.expanduser": _sp_expanduser,
    "os.path.abspath": _sp_expanduser,
    "os.path.realpath": _sp_expanduser,
    "os.path.normpath": _sp_expanduser,
    "os.fspath": _sp_expanduser,
    "builtins.str": _sp_expanduser,
    "shlex.split": _sp_split,
    "shlex.join": _sp_shlex_join,
    "os.environ.get": _sp_getenv,
    "os.getenv": _sp_getenv,
    "shutil.which": _sp_expanduser,
    "threading.Thread": _sp_call_target,
    "threading.Timer": _sp_call_target,
    "multiprocessing.Process": _sp_call_target,
}
