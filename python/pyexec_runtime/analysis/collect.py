"""Pass 1: one walk over the tree that records scopes and the events the solver needs.

Events are flow-insensitive facts: "name N in scope S may be bound to (what this spec evaluates to)",
"this call happens in scope S", "attribute A of (expression) is assigned". The solver (solve.py) runs
them to a fixpoint, so the order of statements and branches does not matter: a name may hold every
value it is ever given.
"""

from __future__ import annotations

import ast
from typing import Any

from .values import UNK, Class, Func, Instance

# Value specs (what a binding event evaluates to):
#   ("expr", node)        the value of an expression, evaluated in the event's scope
#   ("elem", spec)        an element of what spec evaluates to (for-targets, unpacking, comprehensions)
#   ("item", spec, i)     element i of a tuple/list literal, else any element
#   ("import", path)      a module or name reached by an import
#   ("value", v)          a fixed abstract value (functions, classes)
#   ("in", spec, scope)   spec evaluated in that scope (a binding that lands in another scope)
Spec = tuple


_Name, _Constant, _Call, _Attribute, _Subscript = ast.Name, ast.Constant, ast.Call, ast.Attribute, ast.Subscript
_BinOp, _Compare, _UnaryOp, _BoolOp, _IfExp = ast.BinOp, ast.Compare, ast.UnaryOp, ast.BoolOp, ast.IfExp
_List, _Tuple, _Set, _Dict, _Starred, _Await = ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Starred, ast.Await
_JoinedStr, _FormattedValue = ast.JoinedStr, ast.FormattedValue
_STRING_TYPES = (str, bytes)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


# Statement types whose nested statements prescan_declarations looks into (filled on first sight),
# and those it never enters (nested scopes, plain statements).
_BLOCK_FIELDS: dict[type, tuple[str, ...]] = {}
_NO_BLOCKS = frozenset(
    {
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.ClassDef,
        ast.Assign,
        ast.AugAssign,
        ast.AnnAssign,
        ast.Expr,
        ast.Return,
        ast.Pass,
        ast.Break,
        ast.Continue,
        ast.Raise,
        ast.Assert,
        ast.Delete,
        ast.Import,
        ast.ImportFrom,
    }
)


def _nothing(collector: Any, st: Any) -> None:
    pass


class Table(dict):
    """A binding table (names of a scope, container members, attributes): key -> set of values.

    `stamp[key]` is the solver tick of the key's last change, so a recorded read (stamps, key, tick)
    is out of date exactly when `stamp[key] > tick` (solve.py).
    """

    __slots__ = ("stamp",)

    def __init__(self) -> None:
        super().__init__()
        self.stamp: dict = {}


class Scope:
    __slots__ = ("bind", "depth", "globals", "kind", "locals", "node", "nonlocals", "owner", "parent", "stars")

    def __init__(self, kind: str, parent: Scope | None, owner: int = -1, node: Any = None) -> None:
        self.kind = kind  # module | function | class | comprehension
        self.parent = parent
        self.locals: set[str] = set()
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()
        self.bind: Table = Table()
        self.stars: list[str] = []
        self.owner = owner  # function or class id
        self.node = node
        # How many functions enclose this scope: the solver runs outer code first, so call sites
        # bind parameters before the bodies that read them.
        self.depth = 0 if parent is None else parent.depth + (1 if kind == "function" else 0)


class FuncInfo:
    __slots__ = (
        "cid",
        "fid",
        "is_gen",
        "kind",
        "kwarg",
        "name",
        "node",
        "params",
        "returns",
        "scope",
        "vararg",
        "yields",
    )

    def __init__(self, fid: int, node: Any, scope: Scope, name: str) -> None:
        self.fid = fid
        self.node = node
        self.scope = scope
        self.name = name
        self.params: list[str] = []
        self.vararg: str | None = None
        self.kwarg: str | None = None
        self.returns: list[Any] = []
        self.cid = -1  # the class it is defined in, if a method
        self.kind = "function"  # function | method | classmethod | staticmethod | property | lambda
        self.is_gen = False
        self.yields: list[tuple[bool, Any]] = []  # (from: `yield from`, value node) of a generator


class ClassInfo:
    __slots__ = ("bases", "cid", "fields", "name", "node", "outer", "scope")

    def __init__(self, cid: int, node: Any, scope: Scope, outer: Scope) -> None:
        self.cid = cid
        self.node = node
        self.scope = scope
        self.outer = outer
        self.bases = list(node.bases)
        # annotated class attributes, in order: a dataclass's (or NamedTuple's) __init__ parameters
        self.fields = [st.target.id for st in node.body if type(st) is ast.AnnAssign and type(st.target) is ast.Name]
        self.name = node.name


class Collected:
    """What pass 1 found."""

    def __init__(self) -> None:
        self.module = Scope("module", None)
        self.binds: list[tuple[Scope, str, Spec]] = []
        self.events: list[tuple] = []  # ("b", scope, name, spec) | ("a"|"i", scope, target, spec) | ("c", scope, node)
        self.attr_stores: list[tuple[Scope, Any, Spec]] = []  # (scope, Attribute target node, spec)
        self.item_stores: list[tuple[Scope, Any, Spec]] = []  # (scope, Subscript target node, spec)
        self.calls: list[tuple[Scope, Any]] = []
        self.attr_loads: list[tuple[Scope, Any]] = []
        self.sub_loads: list[tuple[Scope, Any]] = []
        self.iters: list[tuple[Scope, Any]] = []  # iterated expressions (for `for k in os.environ`)
        self.imports: list[tuple[Any, str]] = []  # (node, module path)
        self.funcs: list[FuncInfo] = []
        self.classes: list[ClassInfo] = []
        self.results: list[Any] = []  # value nodes assigned to the module-level `results` (None: not an Assign)
        self.node_scope: dict[int, Scope] = {}
        # String literals (str/bytes constants, f-strings), when asked for (analyze.masked_source).
        self.strings: list[Any] | None = None


class Collector:
    def __init__(self, keep_strings: bool = False) -> None:
        self.out = Collected()
        self.scope = self.out.module
        if keep_strings:
            self.out.strings = []

    # ---- entry -------------------------------------------------------------------------------
    def run(self, tree: ast.Module) -> Collected:
        self.body(tree.body)
        self.out.events.sort(key=lambda e: e[1].depth)
        return self.out

    def body(self, stmts: list) -> None:
        for st in stmts:
            handler = _STMT.get(type(st))
            if handler is not None:
                handler(self, st)
            else:
                self.generic_stmt(st)

    def generic_stmt(self, st: Any) -> None:
        for name in st._fields:
            value = getattr(st, name)
            if isinstance(value, list):
                if value and isinstance(value[0], ast.stmt):
                    self.body(value)
                else:
                    for v in value:
                        if isinstance(v, ast.expr):
                            self.expr(v)
                        elif isinstance(v, ast.AST):
                            self.generic_stmt(v)
            elif isinstance(value, ast.expr):
                self.expr(value)
            elif isinstance(value, ast.AST):
                self.generic_stmt(value)

    # ---- binding helpers ---------------------------------------------------------------------
    def declare(self, name: str) -> Scope:
        """The scope a binding of `name` in the current scope lands in."""
        s = self.scope
        while s.kind == "comprehension":  # only walrus reaches here; iteration variables use bind_local
            s = s.parent  # type: ignore[assignment]
        if name in s.globals:
            return self.out.module
        if name in s.nonlocals:
            p = s.parent
            while p is not None and not (p.kind == "function" and name in p.locals):
                p = p.parent
            return p or self.out.module
        s.locals.add(name)
        return s

    def bind(self, name: str, spec: Spec, node: Any = None, comp_local: bool = False) -> None:
        scope = self.scope if comp_local else self.declare(name)
        if scope is not self.scope and spec[0] not in ("value", "import"):
            # A global or nonlocal name (or a walrus in a comprehension) lands in another scope, but
            # its value is an expression of this one.
            spec = ("in", spec, self.scope)
        scope.locals.add(name)
        self.out.binds.append((scope, name, spec))
        self.out.events.append(("b", scope, name, spec))
        if name == "results" and scope is self.out.module:
            self.out.results.append(node)

    def target(self, t: Any, spec: Spec, value_node: Any = None, comp_local: bool = False) -> None:
        tt = type(t)
        if tt is ast.Name:
            self.bind(t.id, spec, value_node, comp_local)
        elif tt is ast.Tuple or tt is ast.List:
            starred = any(type(elt) is ast.Starred for elt in t.elts)
            for i, elt in enumerate(t.elts):
                if type(elt) is ast.Starred:
                    self.target(elt.value, ("value_of_container", spec), None, comp_local)
                else:  # past a starred name, positions do not line up: -1, any member
                    self.target(elt, ("item", spec, -1 if starred else i), None, comp_local)
        elif tt is ast.Attribute:
            self.expr(t.value)
            self.out.attr_stores.append((self.scope, t, spec))
            self.out.events.append(("a", self.scope, t, spec))
        elif tt is ast.Subscript:
            self.expr(t.value)
            self.expr(t.slice)
            self.out.item_stores.append((self.scope, t, spec))
            self.out.events.append(("i", self.scope, t, spec))
        elif tt is ast.Starred:
            self.target(t.value, ("value_of_container", spec), None, comp_local)

    # ---- statements --------------------------------------------------------------------------
    def s_func(self, st: Any) -> None:
        for d in st.decorator_list:
            self.expr(d)
        self.arguments_defaults(st.args)
        if st.returns is not None:
            self.expr(st.returns)
        info = self.new_func(st, st.name)
        deco_names = {
            d.id if type(d) is ast.Name else d.attr
            for d in st.decorator_list
            if type(d) is ast.Name or type(d) is ast.Attribute
        }
        if self.scope.kind == "class":
            info.cid = self.scope.owner
            info.kind = (
                "staticmethod"
                if "staticmethod" in deco_names
                else (
                    "classmethod"
                    if "classmethod" in deco_names
                    else ("property" if deco_names & {"property", "cached_property"} else "method")
                )
            )
            if info.kind != "staticmethod" and info.params:
                # `self` is an instance of the class (of a subclass, through call sites), `cls` the class.
                first = Instance(info.cid) if info.kind == "method" else Class(info.cid)
                self.out.events.append(("b", info.scope, info.params[0], ("value", first)))
        self.bind(st.name, ("value", Func(info.fid)), None)
        outer = self.scope
        self.scope = info.scope
        self.body(st.body)
        self.scope = outer

    def new_func(self, node: Any, name: str) -> FuncInfo:
        fid = len(self.out.funcs)
        scope = Scope("function", self.scope, fid, node)
        info = FuncInfo(fid, node, scope, name)
        a = node.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
            info.params.append(arg.arg)
            scope.locals.add(arg.arg)
        if a.vararg is not None:
            info.vararg = a.vararg.arg
            scope.locals.add(a.vararg.arg)
        if a.kwarg is not None:
            info.kwarg = a.kwarg.arg
            scope.locals.add(a.kwarg.arg)
        # Parameters with defaults may hold the default value.
        positional = [*a.posonlyargs, *a.args]
        for arg, default in zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=False):
            self.out.events.append(("b", scope, arg.arg, ("expr_in", default, self.scope)))
        for arg, default in zip(a.kwonlyargs, a.kw_defaults, strict=False):
            if default is not None:
                self.out.events.append(("b", scope, arg.arg, ("expr_in", default, self.scope)))
        self.out.funcs.append(info)
        self.prescan_declarations(node, scope)
        return info

    def prescan_declarations(self, node: Any, scope: Scope) -> None:
        """global/nonlocal apply to the whole function body, whatever their position."""
        if type(node) is ast.Lambda:
            return
        stack = list(node.body)
        while stack:
            st = stack.pop()
            t = type(st)
            if t is ast.Global:
                scope.globals.update(st.names)
            elif t is ast.Nonlocal:
                scope.nonlocals.update(st.names)
            else:
                fields = _BLOCK_FIELDS.get(t)
                if fields is None:
                    if t in _NO_BLOCKS:
                        continue
                    fields = _BLOCK_FIELDS[t] = tuple(
                        f for f in ("body", "orelse", "finalbody", "handlers", "cases") if f in t._fields
                    )
                for name in fields:
                    sub = getattr(st, name)
                    if sub:
                        stack.extend(sub)

    def arguments_defaults(self, a: Any) -> None:
        for d in a.defaults:
            self.expr(d)
        for d in a.kw_defaults:
            if d is not None:
                self.expr(d)
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.expr(arg.annotation)

    def s_class(self, st: Any) -> None:
        for d in st.decorator_list:
            self.expr(d)
        for b in st.bases:
            self.expr(b)
        for k in st.keywords:
            self.expr(k.value)
        cid = len(self.out.classes)
        scope = Scope("class", self.scope, cid, st)
        info = ClassInfo(cid, st, scope, self.scope)
        self.out.classes.append(info)
        self.bind(st.name, ("value", Class(cid)), None)
        outer = self.scope
        self.scope = scope
        self.body(st.body)
        self.scope = outer

    def s_expr(self, st: Any) -> None:
        self.expr(st.value)

    def s_if(self, st: Any) -> None:
        self.expr(st.test)
        self.body(st.body)
        self.body(st.orelse)

    def s_assign(self, st: Any) -> None:
        self.expr(st.value)
        spec = ("expr", st.value)
        for t in st.targets:
            self.target(t, spec, st.value)

    def s_annassign(self, st: Any) -> None:
        self.expr(st.annotation)
        if st.value is not None:
            self.expr(st.value)
            self.target(st.target, ("expr", st.value), st.value)
        elif type(st.target) is not ast.Name:
            self.expr(st.target)

    def s_augassign(self, st: Any) -> None:
        self.expr(st.value)
        t = st.target
        if type(t) is ast.Name:
            self.declare(t.id)
            self.bind(t.id, ("expr", st.value), None)
        else:
            # `pv.value += 1` reads and writes the attribute.
            self.expr(t)
            self.target(t, ("expr", st.value), None)

    def s_for(self, st: Any) -> None:
        self.expr(st.iter)
        self.out.iters.append((self.scope, st.iter))
        self.target(st.target, ("elem", ("expr", st.iter)))
        self.body(st.body)
        self.body(st.orelse)

    def s_with(self, st: Any) -> None:
        for item in st.items:
            self.expr(item.context_expr)
            if item.optional_vars is not None:
                # `with Context('pva') as ctxt:` — __enter__ usually returns the object itself; a
                # class of the program's own says what; a @contextmanager generator yields it.
                self.target(item.optional_vars, ("enter", ("expr", item.context_expr)))
        self.body(st.body)

    def s_import(self, st: Any) -> None:
        for alias in st.names:
            self.out.imports.append((st, alias.name))
            if alias.asname:
                self.bind(alias.asname, ("import", alias.name), None)
            else:
                root = alias.name.split(".", 1)[0]
                self.bind(root, ("import", root), None)

    def s_importfrom(self, st: Any) -> None:
        mod = ("." * st.level) + (st.module or "")
        for alias in st.names:
            full = f"{mod}.{alias.name}" if mod and not mod.endswith(".") else f"{mod}{alias.name}"
            self.out.imports.append((st, mod if alias.name == "*" else full))
            if alias.name == "*":
                self.scope.stars.append(mod)
            else:
                self.bind(alias.asname or alias.name, ("import", full), None)

    def s_global(self, st: Any) -> None:
        self.scope.globals.update(st.names)
        for name in st.names:
            self.out.module.locals.add(name)

    def s_nonlocal(self, st: Any) -> None:
        self.scope.nonlocals.update(st.names)

    def s_return(self, st: Any) -> None:
        if st.value is not None:
            self.expr(st.value)
            if self.scope.kind == "function":
                self.out.funcs[self.scope.owner].returns.append(st.value)

    def s_try(self, st: Any) -> None:
        self.body(st.body)
        for h in st.handlers:
            if h.type is not None:
                self.expr(h.type)
            if h.name:
                self.bind(h.name, ("value", UNK), None)
            self.body(h.body)
        self.body(st.orelse)
        self.body(st.finalbody)

    def s_match(self, st: Any) -> None:
        self.expr(st.subject)
        for case in st.cases:
            self.pattern(case.pattern, ("expr", st.subject))
            if case.guard is not None:
                self.expr(case.guard)
            self.body(case.body)

    def pattern(self, p: Any, spec: Spec) -> None:
        """Binds the names a case pattern captures: the subject itself, its elements (a sequence
        pattern), its values (a mapping pattern) or its attributes (a class pattern's keywords)."""
        t = type(p)
        if t is ast.MatchAs or t is ast.MatchStar:
            if t is ast.MatchAs and p.pattern is not None:
                self.pattern(p.pattern, spec)
            if p.name:
                self.bind(p.name, spec, None)
        elif t is ast.MatchOr:
            for alt in p.patterns:
                self.pattern(alt, spec)
        elif t is ast.MatchSequence:
            for sub in p.patterns:
                self.pattern(sub, spec if type(sub) is ast.MatchStar else ("elem", spec))
        elif t is ast.MatchMapping:
            for key in p.keys:
                self.expr(key)
                if type(key) is ast.Constant and self.out.strings is not None and type(key.value) in _STRING_TYPES:
                    self.out.strings.append(key)  # a mapping pattern's key (values go through expr)
            for sub in p.patterns:
                self.pattern(sub, ("members", spec))
            if p.rest:
                self.bind(p.rest, spec, None)
        elif t is ast.MatchClass:
            self.expr(p.cls)
            for sub in p.patterns:
                self.pattern(sub, ("members", spec))
            for attr, sub in zip(p.kwd_attrs, p.kwd_patterns, strict=False):
                self.pattern(sub, ("attr_of", spec, attr))
        elif t is ast.MatchValue:
            self.expr(p.value)

    # ---- expressions -------------------------------------------------------------------------
    def expr(self, node: Any) -> None:
        """Records calls, attribute loads and nested scopes inside an expression (iteratively).

        Children are pushed in field order (and so visited in reverse field order) whatever the
        node type: the common types are spelled out, the rest go through their fields."""
        stack: list = [node]
        push = stack.append
        extend = stack.extend
        pop = stack.pop
        out = self.out
        events = out.events
        strings = out.strings
        while stack:
            n = pop()
            t = type(n)
            if t is _Name:
                continue
            if t is _Constant:
                if strings is not None and type(n.value) in _STRING_TYPES:
                    strings.append(n)
                continue
            if t is tuple:
                # A call's event comes after the events of what it contains (comprehension variables,
                # walrus targets), so evaluating it reads them bound already.
                out.calls.append((self.scope, n[1]))
                events.append(("c", self.scope, n[1]))
                continue
            if t is _Call:
                push(("call", n))
                f = n.func
                if type(f) is _Attribute:
                    push(f.value)  # the callee attribute itself is not a plain load
                else:
                    push(f)
                extend(n.args)
                for kw in n.keywords:
                    push(kw.value)
                continue
            if t is _Attribute:
                out.attr_loads.append((self.scope, n))
                push(n.value)
                continue
            if t is _BinOp:
                push(n.left)
                push(n.right)
                continue
            if t is _Subscript:
                out.sub_loads.append((self.scope, n))
                push(n.value)
                push(n.slice)
                continue
            if t is _Compare:
                push(n.left)
                extend(n.comparators)
                continue
            if t is _List or t is _Tuple or t is _Set:
                extend(n.elts)
                continue
            if t is _Dict:
                extend(k for k in n.keys if k is not None)
                extend(n.values)
                continue
            if t is _UnaryOp:
                push(n.operand)
                continue
            if t is _BoolOp:
                extend(n.values)
                continue
            if t is _JoinedStr:
                if strings is not None:
                    strings.append(n)
                extend(n.values)
                continue
            if t is _FormattedValue:
                push(n.value)
                if n.format_spec is not None:
                    push(n.format_spec)
                continue
            if t is _IfExp:
                push(n.test)
                push(n.body)
                push(n.orelse)
                continue
            if t is _Starred or t is _Await:
                push(n.value)
                continue
            if t is ast.Lambda:
                self.lambda_(n)
                continue
            if t in _COMPREHENSIONS:
                self.comprehension(n)
                continue
            if t is ast.NamedExpr:
                push(n.value)
                self.bind(n.target.id, ("expr", n.value), n.value)
                continue
            if t is ast.Yield or t is ast.YieldFrom:
                s = self.scope
                if s.kind == "function":
                    info = out.funcs[s.owner]
                    info.is_gen = True
                    if n.value is not None:
                        info.yields.append((t is ast.YieldFrom, n.value))
            for name in n._fields:
                v = getattr(n, name)
                if isinstance(v, ast.AST):
                    push(v)
                elif isinstance(v, list):
                    extend(x for x in v if isinstance(x, ast.AST))

    def lambda_(self, n: Any) -> None:
        self.arguments_defaults(n.args)
        info = self.new_func(n, "<lambda>")
        info.kind = "lambda"
        info.returns.append(n.body)
        self.out.node_scope[id(n)] = info.scope
        outer = self.scope
        self.scope = info.scope
        self.expr(n.body)
        self.scope = outer

    def comprehension(self, n: Any) -> None:
        gens = n.generators
        # The first iterable is evaluated in the enclosing scope.
        self.expr(gens[0].iter)
        scope = Scope("comprehension", self.scope, -1, n)
        self.out.node_scope[id(n)] = scope
        outer = self.scope
        self.scope = scope
        for i, g in enumerate(gens):
            if i:
                self.expr(g.iter)
            self.out.iters.append((scope if i else outer, g.iter))
            self.target(g.target, ("elem", ("expr_in", g.iter, outer if i == 0 else scope)), None, comp_local=True)
            for cond in g.ifs:
                self.expr(cond)
        if type(n) is ast.DictComp:
            self.expr(n.key)
            self.expr(n.value)
        else:
            self.expr(n.elt)
        self.scope = outer


# Statement handlers (a table of plain functions: bound methods kept on the collector would make it
# part of a reference cycle, and the whole tree would then wait for the cyclic garbage collector).
_STMT = {
    ast.FunctionDef: Collector.s_func,
    ast.AsyncFunctionDef: Collector.s_func,
    ast.ClassDef: Collector.s_class,
    ast.Assign: Collector.s_assign,
    ast.AnnAssign: Collector.s_annassign,
    ast.AugAssign: Collector.s_augassign,
    ast.For: Collector.s_for,
    ast.AsyncFor: Collector.s_for,
    ast.With: Collector.s_with,
    ast.AsyncWith: Collector.s_with,
    ast.Import: Collector.s_import,
    ast.ImportFrom: Collector.s_importfrom,
    ast.Global: Collector.s_global,
    ast.Nonlocal: Collector.s_nonlocal,
    ast.Return: Collector.s_return,
    ast.Try: Collector.s_try,
    ast.TryStar: Collector.s_try,
    ast.Match: Collector.s_match,
    # The same as generic_stmt would do, spelled out for the common statements.
    ast.Expr: Collector.s_expr,
    ast.If: Collector.s_if,
    ast.While: Collector.s_if,
    ast.Pass: _nothing,
    ast.Break: _nothing,
    ast.Continue: _nothing,
}
