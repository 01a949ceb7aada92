"""The solver's evaluation of expressions: attributes, subscripts, containers, strings and
operators (a mixin of Solver: self is the solver)."""

from __future__ import annotations

import ast
from typing import Any

from .collect import Scope
from .library import (
    LIBRARY_CONTAINERS,
    LIBRARY_VIEWS,
)
from .values import (
    ANY_ATTRIBUTE,
    CONST,
    CONST_SET,
    CONTAINER_METHODS,
    EMPTY,
    MAX_PATH,
    STRING_METHODS,
    UNK_SET,
    UNKNOWN_STRING,
    Class,
    Const,
    Container,
    ContainerMethod,
    Dynamic,
    Func,
    Globals,
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
    collapse_unknown,
    formatted,
    joined,
    lib,
    norm,
    ordered,
    percent,
    short_source,
    unknown_from,
)

# What subscripting / iterating gives for these kinds: an unknown (with the library it came from).
_OPAQUE_SUBSCRIPTED = frozenset({Unknown, UnknownFrom, Instance, Func, Method})
_OPAQUE_ITERATED = _OPAQUE_SUBSCRIPTED | {ContainerMethod}


class Expressions:
    def ev_attribute(self, node: Any, scope: Scope) -> frozenset:
        out = set()
        name = node.attr
        for v in ordered(self.ev(node.value, scope)):
            out.update(self.attr(v, name))
        return frozenset(out)

    def attr(self, v: tuple, name: str) -> set:
        t = type(v)
        if t is Lib:
            path = v.path
            if len(path) > MAX_PATH:
                root = path.split(".", 1)[0]
                return {Lib(root + ".<deep>")}
            if path == "pathlib.Path" and name in ("home", "cwd"):
                return {Lib("pathlib.Path." + name)}
            if name == "__class__" and path.endswith("()"):
                return {Lib(path[:-2])}
            if name == "__call__":
                return {v}
            return {lib(norm(f"{path}.{name}"))}
        elif t is Instance:
            cid = v.cid
            return self.inst_attr(cid, name, v)
        elif t is Class:
            cid = v.cid
            return self.class_attr(cid, name)
        elif t is Container:
            key = v.key
            if key[0] == "lib":  # a library object's: its own methods, or a view of what it holds
                return {v} if name in LIBRARY_VIEWS else {ContainerMethod(key, name)}
            out = {ContainerMethod(key, name)}
            if name not in CONTAINER_METHODS:
                out.update(self.get(self.containers, key))  # SimpleNamespace-like objects
            return out
        elif t is Dynamic:
            return {v}
        elif t is PathObj:
            text = v.text
            return {PathMethod(text, name)}
        elif t is Str or t is Const or t is ContainerMethod or t is PathMethod:
            return {StrMethod(v, name)} if name in STRING_METHODS else {CONST}
        elif t is UnknownFrom:
            root = v.root
            out = {UnknownFrom(name, root)}
        else:
            out = {Unknown(name)}
        out.update(self.get(self.attr_table, name))
        return out

    def class_chain(self, cid: int, seen: set | None = None) -> list:
        """The class and its local base classes (method resolution, roughly), then path bases."""
        seen = seen or set()
        if cid in seen:
            return []
        seen.add(cid)
        info = self.c.classes[cid]
        chain: list = [Class(cid)]
        for b in info.bases:
            for bv in ordered(self.ev(b, info.outer)):
                if bv[0] == "c":
                    chain.extend(self.class_chain(bv[1], seen))
                elif bv[0] == "p":
                    chain.append(bv)
        return chain

    def class_attr(self, cid: int, name: str) -> set:
        out: set = set()
        for entry in self.class_chain(cid):
            if entry[0] == "c":
                values = self.get(self.c.classes[entry[1]].scope.bind, name)
                if values:
                    out.update(values)
                    break
            else:
                out.add(lib(norm(f"{entry[1]}.{name}")))
        return out

    def inst_attr(self, cid: int, name: str, inst: tuple) -> set:
        if name == "__dict__":
            return {self.instance_dict(cid)}
        out: set = set()
        for entry in self.class_chain(cid):
            if entry[0] == "c":
                values = self.get(self.c.classes[entry[1]].scope.bind, name)
                if values:
                    for val in values:
                        kind = self.c.funcs[val[1]].kind if val[0] == "f" else None
                        if kind == "method" or kind == "classmethod":
                            out.add(Method(val[1], inst if kind == "method" else Class(cid)))
                        elif kind == "property" or val[0] == "pr":  # @property, or x = property(getter)
                            out.update(self.call_function(val[1], inst, [], {}))
                        else:
                            out.add(val)
                    break
            else:
                out.add(lib(norm(f"{entry[1]}().{name}")))
        out.update(self.get(self.attr_table, name))  # (stored on some object: not asked of __getattr__)
        if not out and not name.startswith("__") and not self.optimistic:
            # class Ring: def __getattr__(self, name): return PV(...) (once the stores the program
            # makes have been seen: an attribute stored later is not __getattr__'s)
            got = self.special_method(inst, "__getattr__", [frozenset({Str(name, True)})])
            if got is not None:
                out.update(got)
                if self.opaque(cid):
                    out.add(Unknown(name))
        if not out and self.unresolved():
            out.add(Unknown(name))
        return out

    def ev_subscript(self, node: Any, scope: Scope) -> frozenset:
        keys = self.ev(node.slice, scope)
        const_keys = sorted(k[1] for k in keys if k[0] == "s" and k[2])
        computed = any(k[0] != "s" or not k[2] for k in keys)
        out = set()
        for v in self.ev(node.value, scope):
            t = type(v)
            if t is Container:
                out.update(self.get(self.containers, v.key) or self.unresolved())
            elif t is Lib:
                path = v.path
                if path == "sys.modules" or path.endswith(".__dict__") or path == "builtins.vars()":
                    base = None if path == "sys.modules" else path[: -len(".__dict__")]
                    for key in const_keys:
                        out.add(lib(norm(key if base is None else f"{base}.{key}")))
                    if computed:
                        out.add(Dynamic(f"`{short_source(node)}` looks a name up with a computed key"))
                elif path == "os.environ":
                    out.add(Str("", False))
                else:
                    out.add(lib(norm(path + "[]")))
            elif t is Globals:
                for key in const_keys:
                    out.update(self._module_name(key))
                if computed:
                    out.add(Dynamic(f"`{short_source(node)}` looks a global up with a computed key"))
            elif t is Dynamic:
                out.add(v)
            elif t is Instance and (
                (got := self.special_method(v, "__getitem__", [keys])) is not None
                or (got := self.special_method(v, "__missing__", [keys])) is not None
            ):
                out.update(got)  # a class of the program's with __getitem__, or a dict subclass's __missing__
                if self.opaque(v.cid):
                    out.add(unknown_from(v))
            elif t in _OPAQUE_SUBSCRIPTED:
                out.add(unknown_from(v))
            else:
                out.add(CONST)
        return frozenset(out)

    def elements(self, values: frozenset) -> frozenset:
        """What iterating values gives (a dict: its keys)."""
        out = set()
        containers = self.containers
        for v in values:
            t = type(v)
            if t is Container:
                key = v.key
                keys = ("keys", key)
                out.update(self.get(containers, keys if keys in containers else key))
            elif t is Lib:
                out.add(lib(norm(v.path + "[]")))
            elif t is Dynamic:
                out.add(v)
            elif t is Instance and (got := self.special_method(v, "__iter__", [])) is not None:
                if self.opaque(v.cid):
                    out.add(unknown_from(v))
                for it in got:  # a class of the program's with __iter__
                    if it[0] == "i":  # an iterator of the program's (often itself): what __next__ returns
                        nxt = self.special_method(it, "__next__", [])
                        out.update(nxt if nxt is not None else (unknown_from(it),))
                    else:
                        out.update(self.elements(frozenset((it,))))
            elif t in _OPAQUE_ITERATED:
                out.add(unknown_from(v))
            else:
                out.add(CONST)
        return frozenset(out) if out else self.unresolved()

    def opaque(self, cid: int) -> bool:
        """Whether instances of the program's class cid may hold what the analysis does not see:
        a library base class (dict, list, UserDict ...), their __dict__ or vars() used, or setattr
        with a computed name somewhere. Its special methods' results then come with an unknown."""
        self.get(self.containers, ANY_ATTRIBUTE)
        if self.any_attribute:
            return True
        self.get(self.containers, ("vars", cid))  # (read: what is stored there later makes it opaque)
        if ("vars", cid) in self.containers:
            return True
        return any(e[0] == "p" and e[1] != "builtins.object" for e in self.class_chain(cid))

    def special_method(self, inst: tuple, name: str, args: list) -> set | None:
        """What the method `name` (__iter__, __getitem__, __getattr__ ...) of the program's class of
        inst returns, called with args; None when the class and its bases in the program have none."""
        for entry in self.class_chain(inst[1]):
            if entry[0] == "c":
                values = self.get(self.c.classes[entry[1]].scope.bind, name)
                if values:
                    out: set = set()
                    for val in ordered(values):
                        if val[0] == "f":
                            out.update(self.call_function(val[1], inst, args, {}))
                    return out
        return None

    def library_object(self, node: Any, path: str, args: list, kwargs: dict) -> tuple | None:
        """The container a library call at node makes, when it makes an object that holds things
        (LIBRARY_CONTAINERS: a queue, tqdm(pvs), pandas.Series(motors) ...): what the containers it
        is made from hold. Only those: every library call made from containers holding what they
        hold made enum.py (with `import epics`) 1.6x slower."""
        if path.rsplit(".", 1)[-1] not in LIBRARY_CONTAINERS:
            return None
        holders = frozenset(v for values in [*args, *kwargs.values()] for v in values if v[0] == "k")
        key = ("lib", *self.node_key(node))
        if key not in self.containers:
            self.containers[key] = set()
        if holders:
            self.add(self.containers, key, self.relevant(self.members(holders)))
        return Container(key)

    def members(self, values: frozenset) -> frozenset:
        """The members of values taken as containers (a dict: its values): what `**d` passes."""
        out = set()
        for v in values:
            if v[0] == "k":
                out.update(self.get(self.containers, v[1]))
            else:
                out.update(self.elements(frozenset((v,))))
        return frozenset(out) if out else self.unresolved()

    def item(self, values: frozenset, i: int) -> frozenset:
        """What the i-th name of `a, b = x` or `for a, b in ...` gets from each value (element) x:
        the member at position i where the positions are known, else any member (i < 0: a target
        with a starred name, whose positions do not line up)."""
        out: set = set()
        rest = values
        if i >= 0 and self.positions:
            rest = set()
            positions = self.positions
            for v in values:
                refs = positions.get(v[1]) if v[0] == "k" else None
                if refs is None:
                    rest.add(v)
                elif i < len(refs):
                    out.update(self.get(self.containers, refs[i]))
        if rest:
            out.update(self.elements(frozenset(rest) if type(rest) is set else rest))
        return frozenset(out) if out else self.unresolved()

    def entered(self, values: frozenset) -> frozenset:
        """What `with x as y` binds y to, for each value x: what a generator (@contextmanager) yields,
        what the __enter__ of a class of the program returns, else x itself."""
        out = set(values)
        for v in ordered(values):
            if v[0] == "k" and v[1][0] == "gen":
                out.update(self.elements(frozenset((v,))))
            elif v[0] == "i":
                for enter in ("__enter__", "__aenter__"):
                    for m in ordered(self.inst_attr(v[1], enter, v)):
                        if m[0] == "m":
                            out.update(self.call_function(m[1], m[2], [], {}))
        return frozenset(out)

    def eval_tree(self, text: str) -> Any:
        """The expression node of eval(text), parsed once (the same node every round, for the memo);
        None when it is not a short expression."""
        got = self.eval_trees.get(text, False)
        if got is False:
            got = None
            if len(text) < 1000:
                try:
                    got = ast.parse(text, mode="eval").body
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    got = None
            self.eval_trees[text] = got
        return got

    def is_dict(self, key: Any) -> bool:
        return ("keys", key) in self.containers

    def node_key(self, node: Any) -> tuple:
        """The key of the container made at node: its source position (the same in every process,
        unlike id()), and the depth of exec'd code it is in."""
        return (self.depth, node.lineno, node.col_offset, node.end_lineno, node.end_col_offset)

    def record_positions(self, key: Any, parts: list) -> set:
        """Records the members of container key position by position; returns them all."""
        refs = tuple(("pos", key, i) for i in range(len(parts)))
        members: set = set()
        for ref, values in zip(refs, parts, strict=False):
            self.add(self.containers, ref, values)
            members.update(values)
        self.positions[key] = refs
        return members

    def container(self, node: Any, members: Any, keys: Any = None) -> frozenset:
        """The container made at node; keys: a dict's keys (a dict is a container with a keys entry)."""
        key = self.node_key(node)
        self.add(self.containers, key, members)
        if key not in self.containers:
            self.containers[key] = set()
        if keys is not None:
            self.add(self.containers, ("keys", key), keys)
            if ("keys", key) not in self.containers:
                self.containers[("keys", key)] = set()
        return frozenset({Container(key)})

    def pair_of(self, node: Any, parts: list) -> Any:
        """zip / enumerate at node: a container of one positional container standing for every
        tuple it yields; returns the outer container's key."""
        key = self.node_key(node)
        pair = ("tuple", key)
        self.add(self.containers, pair, self.record_positions(pair, parts))
        self.add(self.containers, key, {Container(pair)})
        return key

    def ev_seq(self, node: Any, scope: Scope) -> frozenset:
        members: set = set()
        parts: list | None = [] if type(node) is ast.Tuple else None
        for e in node.elts:
            if type(e) is ast.Starred:
                members.update(self.elements(self.ev(e.value, scope)))
                parts = None
            else:
                values = self.ev(e, scope)
                members.update(values)
                if parts is not None:
                    parts.append(values)
        if parts:  # a tuple display: its members by position as well
            self.record_positions(self.node_key(node), parts)
        return self.container(node, members)

    def ev_dict(self, node: Any, scope: Scope) -> frozenset:
        members: set = set()
        keys: set = set()
        for k, v in zip(node.keys, node.values, strict=False):
            if k is None:
                values = self.ev(v, scope)
                members.update(self.members(values))
                keys.update(self.elements(values))
            else:
                members.update(self.ev(v, scope))
                keys.update(self.ev(k, scope))
        return self.container(node, members, keys)

    def ev_comp(self, node: Any, scope: Scope) -> frozenset:
        inner = self.c.node_scope.get(id(node), scope)
        if type(node) is ast.DictComp:
            return self.container(node, self.ev(node.value, inner), self.ev(node.key, inner))
        return self.container(node, self.ev(node.elt, inner))

    def fill_dict(self, key: Any, args: list, kwargs: dict) -> None:
        """dict(...), d.update(...): keys and values from mappings, from pairs, and from keywords."""
        containers = self.containers
        for values in args:
            for v in ordered(values):
                if v[0] == "k" and self.is_dict(v[1]):
                    self.add(containers, ("keys", key), self.get(containers, ("keys", v[1])))
                    self.add(containers, key, self.get(containers, v[1]))
                else:
                    pairs = self.elements(frozenset((v,)))
                    self.add(containers, ("keys", key), self.item(pairs, 0))
                    self.add(containers, key, self.item(pairs, 1))
        for name, values in kwargs.items():
            self.add(containers, ("keys", key), self.members(values) if name is None else {Str(name, True)})
            self.add(containers, key, values)

    def ev_yield(self, node: Any, scope: Scope) -> frozenset:
        """`x = yield v`: what the generator is sent (gen.send(x)), or None."""
        if scope.kind != "function":
            return CONST_SET
        return CONST_SET | self.get(self.containers, ("sent", scope.owner))

    def ev_lambda(self, node: Any, scope: Scope) -> frozenset:
        inner = self.c.node_scope.get(id(node))
        return frozenset({Func(inner.owner)}) if inner is not None else UNK_SET

    def ev_union(self, *parts: frozenset) -> frozenset:
        out: set = set()
        for p in parts:
            out.update(p)
        return frozenset(out)

    def ev_ifexp(self, node: Any, scope: Scope) -> frozenset:
        self.ev(node.test, scope)
        return self.ev_union(self.ev(node.body, scope), self.ev(node.orelse, scope))

    def ev_boolop(self, node: Any, scope: Scope) -> frozenset:
        return self.ev_union(*(self.ev(v, scope) for v in node.values))

    def ev_passthrough(self, node: Any, scope: Scope) -> frozenset:
        return self.ev(node.value, scope)

    def ev_joinedstr(self, node: Any, scope: Scope) -> frozenset:
        parts: list = []
        for v in node.values:
            if type(v) is ast.Constant and isinstance(v.value, str):
                parts.append(frozenset({Str(v.value, True)}))
            else:
                values = self.ev(v.value, scope)
                if not values:  # a part with nothing yet (see unresolved): the string too
                    return self.unresolved()
                plain = v.conversion in (-1, 115) and v.format_spec is None  # {x} or {x!s}
                parts.append(values if plain else frozenset({UNKNOWN_STRING}))
        return frozenset(joined("", parts))

    def ev_binop(self, node: Any, scope: Scope) -> frozenset:
        left = self.ev(node.left, scope)
        right = self.ev(node.right, scope)
        if not left or not right:  # an operand with nothing yet (see unresolved)
            return self.unresolved()
        out: set = set()
        op = type(node.op)
        for lv in left:
            if lv[0] == "s" and op is ast.Add:
                for rv in right:
                    if rv[0] == "s":
                        text = lv[1] + rv[1]
                        if "\x00\x00" in text:  # unknown then unknown: one unknown part
                            text = collapse_unknown(text)
                        out.add(Str(text[:4000], lv[2] and rv[2]))
                    else:
                        out.add(Str(collapse_unknown(lv[1] + "\x00"), False))
            elif lv[0] == "s" and op is ast.Mod:
                parts = self.literal_parts(node.right, scope)
                if parts is None:  # one value, or a mapping ("%(tool)s" % d): its strings as well
                    mappings = frozenset(v for v in right if v[0] == "k")
                    parts = [right | self.members(mappings) if mappings else right]
                out.update(formatted(lv[1], lv[2], parts, {}, percent))
            elif lv[0] == "k" and op is ast.BitOr and self.is_dict(lv[1]):  # dict | dict
                made = self.container(node, EMPTY, EMPTY)
                self.fill_dict(next(iter(made))[1], [frozenset((lv,)), right], {})
                out.update(made)
            elif lv[0] == "k" and op is ast.Add and any(rv[0] == "k" for rv in right):  # list + list
                out.update(self.container(node, self.members(frozenset((lv,))) | self.members(right)))
            elif lv[0] == "po" and op is ast.Div:
                for rv in right:
                    text = rv[1] if rv[0] == "s" else "\x00"
                    base = lv[1]
                    out.add(PathObj(None if base is None else f"{base}/{text}"))
        if not out:
            if any(v[0] == "s" for v in right) and op is ast.Add:
                out.add(Str("\x00", False))
            else:
                out.add(CONST)
        return frozenset(out)

    def ev_call(self, node: Any, scope: Scope) -> frozenset:
        fvals = self.ev(node.func, scope)
        args = []
        for a in node.args:
            if type(a) is ast.Starred:
                args.append(Spread(self.elements(self.ev(a.value, scope))))
            else:
                args.append(self.ev(a, scope))
        kwargs: dict[str | None, frozenset] = {}
        for kw in node.keywords:
            val = self.ev(kw.value, scope)
            if kw.arg is None:
                kwargs[None] = kwargs.get(None, EMPTY) | self.members(val)
            else:
                kwargs[kw.arg] = val
        out: set = set()
        for f in ordered(fvals):
            out.update(self.apply(f, node, scope, args, kwargs))
        self.call_args[node] = (scope, fvals, args, kwargs)
        if out:
            return frozenset(out)
        return self.unresolved() if not fvals else UNK_SET
