"""The solver's evaluation of calls: functions of the program, library functions (library.MODELS),
methods of strings, containers and library objects (a mixin of Solver: self is the solver)."""

from __future__ import annotations

import ast
from typing import Any

from . import model
from .collect import Scope
from .library import (
    LIBRARY_BULK_STORES,
    LIBRARY_FETCHES,
    LIBRARY_STORES,
    LIBRARY_VIEWS,
    MODELS,
    followed_library_call,
)
from .values import (
    CONST,
    CONST_SET,
    CONTAINER_BULK_MUTATORS,
    CONTAINER_METHODS_RETURNING_MEMBERS,
    CONTAINER_METHODS_RETURNING_SELF,
    CONTAINER_MUTATORS,
    EMPTY,
    MAX_PATH,
    UNK,
    UNK_SET,
    UNKNOWN_STRING,
    Class,
    Container,
    ContainerMethod,
    Dynamic,
    Func,
    Instance,
    Lib,
    Method,
    PathMethod,
    PathObj,
    Spread,
    Str,
    StrMethod,
    Unknown,
    UnknownFrom,
    formatted,
    has_function,
    joined,
    lib,
    norm,
    ordered,
    texts_of,
    unknown_from,
)


class Calls:
    # ---- calls -------------------------------------------------------------------------------
    def apply(self, f: tuple, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
        t = type(f)
        if t is Lib:
            path = f.path
            special = MODELS.get(path)
            if special is not None:
                return special(self, node, scope, args, kwargs)
            if len(path) > MAX_PATH:
                return {Lib(path.split(".", 1)[0] + ".<deep>")}
            if args and path.endswith((".__getattribute__", ".__getattr__")):  # x.__getattribute__("caput")
                return MODELS["builtins.getattr"](
                    self, node, scope, [frozenset({Lib(path.rsplit(".", 1)[0])}), *args], kwargs
                )
            result = {lib(norm(path + "()"))}
            if self.near_cs:
                if followed_library_call(path):
                    if args or kwargs:
                        self.library_call(node, scope, path, args, kwargs, result)
                    made = self.library_object(node, path, args, kwargs)
                    if made is not None:
                        result.add(made)
                elif model.cs_root(path) and has_function(args, kwargs):
                    self.control_system_callback(node, scope, path, args, kwargs)
            return result
        elif t is Func:
            fid = f.fid
            return self.call_function(fid, None, args, kwargs)
        elif t is Method:
            fid = f.fid
            self_value = f.self_value
            return self.call_function(fid, self_value, args, kwargs)
        elif t is Class:
            cid = f.cid
            inst = Instance(cid)
            inits = [m for m in ordered(self.class_attr(cid, "__init__")) if m[0] == "f"]
            for m in inits:
                self.call_function(m[1], inst, args, kwargs)
            fields = self.c.classes[cid].fields
            if not inits and fields:  # a dataclass: its fields hold the arguments
                for i, values in enumerate(args):
                    for name in fields[i:] if type(values) is Spread else fields[i : i + 1]:
                        self.set_attribute(inst, name, values)
                for name, values in kwargs.items():
                    if name in fields:
                        self.set_attribute(inst, name, values)
            return {inst}
        elif t is ContainerMethod:
            key = f.key
            name = f.name
            if key[0] == "lib" and name in model.MAPPING_CALLS:  # series.apply(f): f gets each element
                held = self.relevant(self.get(self.containers, key))
                for values in args:
                    for g in ordered(values):
                        if g[0] == "f" or g[0] == "m":
                            self.apply(g, node, scope, [held], {})
            return self.container_method(key, name, args, kwargs)
        elif t is Container:  # a namedtuple class (or a namespace called): an instance holding the arguments
            members: set = set()
            for values in [*args, *kwargs.values()]:
                members.update(values)
            return set(self.container(node, members))
        elif t is Dynamic:
            return {f}
        elif t is PathMethod:
            text = f.text
            name = f.name
            if name in ("joinpath", "with_name", "with_suffix", "resolve", "absolute", "expanduser"):
                return {PathObj(text)}
            return {CONST}
        elif t is StrMethod:
            base = f.base
            name = f.name
            return self.string_method(node, scope, base, name, args, kwargs)
        elif t is Unknown or t is UnknownFrom:
            return {unknown_from(f)}
        return {CONST}

    def library_call(self, node: Any, scope: Scope, path: str, args: list, kwargs: dict, result: set) -> None:
        """A call of a library function with arguments, in a program that uses the control system.

        A function of the program among the arguments is called back with the arguments that
        follow it, position by position (executor.submit(f, q, pv), asyncio.to_thread,
        atexit.register, loop.call_soon ...), or with their elements where the library maps it over
        them (executor.map(f, pvs), pool.imap ...). Only control-system objects and strings are
        passed on: other values cannot write, and following every value of every callback would
        flood ordinary code. A library function that picks from its arguments
        (model.PASSTHROUGH_CALLS: random.choice(pvs), itertools.chain(a, b), max(pvs, key=...))
        hands control-system objects back."""
        name = path.rsplit(".", 1)[-1]
        mapping = name in model.MAPPING_CALLS
        for i, values in enumerate(args):
            funcs = [v for v in values if v[0] == "f" or v[0] == "m"]
            if not funcs or type(values) is Spread:
                continue
            rest = args[i + 1 :]
            if name == "reduce":  # reduce(f, xs, initial): both parameters get elements (or initial)
                passed = [Spread(self.relevant(self.elements(rest[0]) | frozenset().union(*rest[1:])))] if rest else []
            elif name in model.ARGUMENT_TUPLE_CALLS and rest:  # scheduler.enter(delay, prio, f, (pv,))
                passed = [Spread(self.relevant(self.elements(rest[0])))]
            elif name.startswith("starmap"):
                passed = [Spread(self.relevant(self.elements(self.elements(a)))) for a in rest[:1]]
            elif mapping:
                passed = [self.relevant(self.elements(a)) for a in rest]
            else:
                passed = [
                    Spread(self.relevant(self.elements(a))) if type(a) is Spread else self.relevant(a) for a in rest
                ]
            passed_kw = {k: self.relevant(v) for k, v in kwargs.items() if k is not None and k != "key"}
            for f in ordered(frozenset(funcs)):
                self.apply(f, node, scope, passed, passed_kw)
        for f in ordered(kwargs.get("key", EMPTY)):  # max(pvs, key=f): f gets each element
            if (f[0] == "f" or f[0] == "m") and args and type(args[0]) is not Spread:
                self.apply(f, node, scope, [self.relevant(self.elements(args[0]))], {})
        if path in model.PASSTHROUGH_CALLS or path.startswith("itertools."):
            for values in args:
                for v in self.relevant(values | self.elements(values) if type(values) is not Spread else values):
                    if v[0] == "p" and (v[1].endswith(("()", "[]")) or "(" not in v[1]):
                        result.add(v)

    def control_system_callback(self, node: Any, scope: Scope, path: str, args: list, kwargs: dict) -> None:
        """A function of the program given to the control system (epics.PV(name, callback=f),
        pv.add_callback(f), camonitor(name, callback=f), signal.subscribe(f)) is called back with
        the keywords pyepics and ophyd pass: pvname, value, cb_info=(index, pv), obj=signal."""
        receiver, _, name = path.rpartition(".")
        if receiver.endswith((")", "]")):
            obj = receiver  # pv.add_callback(f): pv
        elif name[:1].isupper():
            obj = norm(path + "()")  # epics.PV(name, callback=f): the new PV
        else:
            obj = "epics.PV()"  # camonitor(name, callback=f): a PV pyepics makes
        handle = frozenset({Lib(obj)})
        info = ("cb_info", self.node_key(node))
        self.add(self.containers, info, self.record_positions(info, [CONST_SET, handle]))
        passed = {
            "pvname": frozenset({UNKNOWN_STRING}),
            "value": CONST_SET,
            "cb_info": frozenset({Container(info)}),
            "obj": handle,
            "pv": handle,
        }  # (pv: connection and access callbacks)
        if name == "add_callback":  # pv.add_callback(f, out=other): f gets out=other too
            passed.update((k, v) for k, v in kwargs.items() if k is not None and k not in ("callback", "index"))
        for values in [*args, *kwargs.values()]:
            for f in ordered(
                values | self.members(frozenset(v for v in values if v[0] == "k"))
                if any(v[0] == "k" for v in values)
                else values
            ):  # callback=[f, g]
                if f[0] == "f" or f[0] == "m":
                    self.apply(f, node, scope, [], passed)

    def relevant(self, values: frozenset) -> frozenset:
        """What a callback is passed of values: control-system objects, strings, and the program's
        containers and objects (which may hold control-system objects)."""
        return frozenset(v for v in values if v[0] in ("s", "k", "i") or (v[0] == "p" and model.cs_root(v[1])))

    def call_function(self, fid: int, self_value: tuple | None, args: list, kwargs: dict) -> set:
        info = self.c.funcs[fid]
        table = info.scope.bind
        params = info.params
        offset = 0
        if self_value is not None and params:
            self.add(table, params[0], (self_value,))
            offset = 1
        spread_from = -1
        for i, values in enumerate(args):
            j = i + offset
            if spread_from < 0 and type(values) is Spread:
                spread_from = j
            # f(*a): the elements of a may land on any parameter from there on (so may what follows).
            for p in params[spread_from:] if spread_from >= 0 else params[j : j + 1]:
                self.add(table, p, values)
            if info.vararg and (spread_from >= 0 or j >= len(params)):
                key = ("varargs", fid)
                self.add(self.containers, key, values)
                self.add(table, info.vararg, (Container(key),))
        for name, values in kwargs.items():
            if name is not None and name in params:
                self.add(table, name, values)
            elif info.kwarg:
                key = ("kwargs", fid)
                self.add(self.containers, key, values)
                self.add(table, info.kwarg, (Container(key),))
            elif name is None:
                for p in params[offset:]:
                    self.add(table, p, values)
        return set(self.returns(fid))

    def returns(self, fid: int) -> frozenset:
        """What a function returns (memoised for the round, with what computing it read, so every
        caller depends on those reads, not only the first)."""
        got = self.returns_memo.get(fid)
        if got is not None:
            result, reads, kids = got
            self.reads.extend(reads)
            self.kids.extend(kids)
            return result
        if fid in self.in_progress:
            self.cuts += 1  # a recursion: cut here (the values around depend on where it was entered)
            return UNK_SET
        info = self.c.funcs[fid]
        self.in_progress.add(fid)
        outer_reads, outer_kids = self.reads, self.kids
        self.reads, self.kids = reads, kids = [], []
        try:
            out: set = set()
            if info.is_gen:  # a generator: what it yields, as a container (the return value is not)
                key = ("gen", fid)
                yielded: set = set()
                for from_, value in info.yields:
                    values = self.ev(value, info.scope)
                    yielded.update(self.elements(values) if from_ else values)
                self.add(self.containers, key, yielded or UNK_SET)
                out.add(Container(key))
            else:
                for r in info.returns:
                    out.update(self.ev(r, info.scope))
            if not out:
                out.update(self.unresolved() if info.returns else UNK_SET)
        finally:
            self.in_progress.discard(fid)
            self.reads, self.kids = outer_reads, outer_kids
        outer_reads.extend(reads)
        outer_kids.extend(kids)
        result = frozenset(out)
        self.returns_memo[fid] = (result, reads, kids)
        return result

    def string_method(self, node: Any, scope: Scope, base: tuple, name: str, args: list, kwargs: dict) -> set:
        """A string method of base (a string, or a value that may be one: str(x).strip())."""
        if base[0] != "s":
            base = UNKNOWN_STRING
        text, complete = base[1], base[2]
        if name == "join":
            parts = self.literal_parts(node.args[0], scope) if args and node.args else None
            if parts is not None:
                return joined(text, parts)
            words = texts_of(self.elements(args[0])) if args else []
            return {Str("\x00" + text.join(w for w, _ in words) + "\x00", False)}
        if name in ("split", "rsplit", "splitlines"):
            if complete and not args and not kwargs:
                words = text.splitlines() if name == "splitlines" else text.split()
                return set(self.container(node, {Str(w, True) for w in words}))
            return set(self.container(node, {Str(w, False) for w in text.replace("\x00", " \x00 ").split()}))
        if name == "format":
            return formatted(text, complete, args, kwargs, str.format)
        if name in ("encode", "decode"):  # bytes are followed as text
            return {base}
        if (
            complete
            and not kwargs
            and len(text) <= 4000
            and all(texts_of(a) and all(c for _, c in texts_of(a)) and len(a) == 1 for a in args)
        ):
            given = [texts_of(a)[0][0] for a in args]
            growth = len(given[1]) * text.count(given[0]) if name == "replace" and len(given) > 1 and given[0] else 0
            if growth <= 100_000:  # "a".replace("a", s) on a long s, again and again: not built
                try:
                    return {Str(getattr(text, name)(*given)[:4000], True)}
                except (TypeError, ValueError):
                    return {CONST}
        return {Str(text, False)}

    def literal_parts(self, arg: Any, scope: Scope) -> list | None:
        """The values of each element of a list or tuple display, in order (None: not one); a display
        followed by `+ other`: its elements, then one unknown part for the rest."""
        if type(arg) in (ast.List, ast.Tuple) and not any(type(e) is ast.Starred for e in arg.elts):
            return [self.ev(e, scope) for e in arg.elts]
        if type(arg) is ast.BinOp and type(arg.op) is ast.Add:
            left = self.literal_parts(arg.left, scope)
            if left is not None:
                return left + (self.literal_parts(arg.right, scope) or [frozenset({UNKNOWN_STRING})])
        return None

    def container_method(self, key: Any, name: str, args: list, kwargs: dict) -> set:
        if key[0] == "lib":
            return self.library_method(key, name, args, kwargs)
        if name == "send" and key[0] == "gen":  # gen.send(x): the generator's `yield` gives x
            if args:
                self.add(self.containers, ("sent", key[1]), args[0])
            return set(self.get(self.containers, key)) or {UNK}
        if self.is_dict(key):
            got = self.dict_method(key, name, args, kwargs)
            if got is not None:
                return got
        if name in CONTAINER_MUTATORS:
            for values in args[-1:]:
                self.add(self.containers, key, values)
            return {CONST}
        if name in CONTAINER_BULK_MUTATORS:
            for values in args:
                self.add(self.containers, key, self.elements(values))
            for values in kwargs.values():
                self.add(self.containers, key, values)
            return {CONST}
        if name in CONTAINER_METHODS_RETURNING_MEMBERS:
            out = set(self.get(self.containers, key))
            if name in ("get", "pop", "setdefault") and len(args) > 1:
                out.update(args[1])
            return out or set(self.unresolved())
        if name in CONTAINER_METHODS_RETURNING_SELF:
            return {Container(key)}
        return {CONST}

    def library_method(self, key: Any, name: str, args: list, kwargs: dict) -> set:
        """A method of a library object that holds things (see library_object)."""
        if name in LIBRARY_STORES:  # q.put(item, block, timeout), q.put(item=x), d.insert(i, x)
            given = args[-1] if name == "insert" and args else args[0] if args else kwargs.get("item", EMPTY)
            self.add(self.containers, key, self.elements(given) if type(given) is Spread else given)
        elif name in LIBRARY_BULK_STORES:
            for values in args:
                self.add(self.containers, key, self.elements(values))
        elif name in LIBRARY_FETCHES:
            return set(self.get(self.containers, key)) or set(self.unresolved())
        elif name in LIBRARY_VIEWS:
            return {Container(key)}
        return {CONST}

    def dict_method(self, key: Any, name: str, args: list, kwargs: dict) -> set | None:
        """The methods of a dict that involve its keys (None: as any container)."""
        containers = self.containers
        if name == "keys":
            return {Container(("keys", key))}
        if name == "values":
            view = ("values", key)
            self.add(containers, view, self.get(containers, key))
            return {Container(view)}
        if name == "items":
            pair, view = ("pair", key), ("items", key)
            self.positions[pair] = (("keys", key), key)
            self.add(containers, pair, self.get(containers, ("keys", key)) | self.get(containers, key))
            self.add(containers, view, {Container(pair)})
            return {Container(view)}
        if name == "update":
            self.fill_dict(key, args, kwargs)
            return {CONST}
        if name == "setdefault" and args:
            self.add(containers, ("keys", key), args[0])
        return None
