"""Pass 2: abstract evaluation of the events of pass 1 until nothing changes.

The values it computes with are in values.py, the models of library functions in library.py;
Solver evaluates expressions (evaluate.py) and calls (calls.py) as mixins of its own."""

from __future__ import annotations

import ast
from typing import Any

from . import model
from .calls import Calls
from .collect import Collected, Scope, Table
from .evaluate import Expressions
from .values import (
    ANY_ATTRIBUTE,
    BUILTIN_NAMES,
    CONST_SET,
    EMPTY,
    MAX_STRINGS,
    OPTIMISTIC_ROUNDS,
    UNK,
    UNK_SET,
    WIDEN_FROM_ROUND,
    Class,
    Container,
    Func,
    Instance,
    Lib,
    Method,
    Str,
    Unknown,
    UnknownFrom,
    const_strings,
    keep_nothing,
    lib,
    merge_many,
    norm,
    ordered,
    string_set,
    widen_chains,
    widen_late,
)

_Name = ast.Name
_Constant = ast.Constant

# Kinds of values that mean the same in the solver of code run by exec() (see Solver._free).
_PORTABLE_KINDS = frozenset({"p", "s", "po", "d", "u", "const", "g"})
# Receivers whose attributes stores go to the attribute table (target.attr = ...; a library path's too,
# unless a control-system one).
_ATTRIBUTE_HOLDERS = frozenset({Unknown, UnknownFrom, Class, Func, Method})


class Solver(Expressions, Calls):
    def __init__(self, c: Collected, outer: Solver | None = None) -> None:
        self.c = c
        self.outer = outer  # for code analysed inside exec("..."): names fall back to the outer module
        # memo: the value of every expression node evaluated so far; deps: what each one read, as
        # (reads, nodes) — reads (stamps, key, tick) of binding tables, and the nodes whose values it
        # used. Both survive from round to round: a round re-evaluates only what went out of date.
        self.memo: dict[Any, frozenset] = {}
        self.deps: dict[Any, tuple[list, list]] = {}
        self.reads: list = []
        self.kids: list = []
        self.tick = 0
        self.volatile: set = set()  # nodes evaluated inside a recursion cut (see returns)
        self.call_args: dict[Any, tuple] = {}  # call node -> (scope, fvals, args, kwargs), for the checker
        self.containers: Table = Table()
        # container key -> the container keys holding its members position by position (tuple
        # literals, zip, enumerate, dict.items() pairs): what `a, b = t` and `for a, b in ...` bind.
        # Set where the container is made, never changed after.
        self.positions: dict[Any, tuple] = {}
        self.eval_trees: dict[str, Any] = {}  # eval("...") text -> its expression node (eval_tree)
        self.attr_table: Table = Table()
        self.near_cs = False
        self.instance_dicts = False  # whether vars(obj) / obj.__dict__ of an instance is used (store_attribute)
        self.force_round = False  # a round that must be followed by another (see instance_dict)
        self.reevaluate = False  # every value again in the next round (see reach_cs)
        self.any_attribute = False  # setattr with a computed name: any object may have any attribute
        self.optimistic = True  # see unresolved
        self.bottoms = 0  # how many times unresolved() gave nothing
        self.optimistic_nodes: set = set()  # memoised nodes whose value counted on such a nothing
        self.returns_memo: dict[int, tuple[frozenset, list, list]] = {}
        self.in_progress: set[int] = set()
        self.kernel_names_used: set[str] = set()
        self.free_memo: dict[str, frozenset] = {}
        self.cuts = 0  # recursion cuts so far (see returns)
        self.round_no = 0
        self.depth = 0 if outer is None else outer.depth + 1  # in container keys: exec("...") code has its own
        self.keep: Any = keep_nothing  # paths never widened (set by the checker: see widen_chains)

    # ---- fixpoint ----------------------------------------------------------------------------
    def solve(self, checker: Any = None, max_rounds: int = 20) -> bool:
        """Rounds over all events until one round reads no binding that changes after the read.

        Such a round saw final values everywhere, so it is a fixpoint. A round after the first keeps
        every memoised value whose reads are all still current and re-evaluates the rest. The checker
        then sees every call with its final values, in the order a full evaluation round reaches
        them (see replay_calls).
        """
        for _imp_node, path in self.c.imports:
            if model.cs_root(path):
                self.near_cs = True
        for scope_stars in self._all_star_scopes():
            if any(model.cs_root(m) for m in scope_stars):
                self.near_cs = True
        converged = False
        root: tuple[list, list] = ([], [])
        for round_no in range(1, max_rounds + 1):
            self.round_no = round_no
            bottoms = self.bottoms
            start_tick = self.tick
            self.returns_memo = {}
            root = ([], [])
            self.reads, self.kids = root
            self.run_events()
            # After the last round allowed, its values stand (out of date or not): keep them all.
            stale = self.tick != start_tick and self.invalidate(root[0], drop=round_no < max_rounds)
            forced, self.force_round = self.force_round, False
            if self.reevaluate and round_no < max_rounds:
                self.reevaluate = False
                self.memo.clear()
                self.deps.clear()
                self.call_args.clear()
                forced = True
            if self.optimistic and (round_no >= OPTIMISTIC_ROUNDS or not (stale or forced)):
                # From now on a value still nothing is unknown (see unresolved): the values that
                # counted on a nothing are evaluated again.
                self.optimistic = False
                if self.optimistic_nodes or self.bottoms != bottoms:
                    self.with_users(self.optimistic_nodes)
                    self.forget(self.optimistic_nodes)
                    self.optimistic_nodes = set()
                    forced = True
            if not stale and not forced:
                converged = True
                break
        self.reads, self.kids = [], []
        if checker is not None:
            self.replay_calls(checker, root[1])
        return converged

    def invalidate(self, root_reads: list, drop: bool = True) -> bool:
        """Drops every memoised value that read a binding changed after the read (or used such a
        value); True when there was one, i.e. the round was not a fixpoint. With drop=False, only
        tells."""
        bad: set = set()
        stale = False
        for stamps, key, tick in root_reads:
            if stamps.get(key, 0) > tick:
                stale = True
                break
        volatile = self.volatile
        for node, (reads, kids) in self.deps.items():
            # Insertion order is evaluation-completion order: a node's kids come before it.
            for stamps, key, tick in reads:
                if stamps.get(key, 0) > tick:
                    bad.add(node)
                    break
            else:
                if kids and not bad.isdisjoint(kids):
                    bad.add(node)
        if not bad and not stale:
            return False
        if not drop:
            return True
        if volatile:
            # Values cut at a recursion depend on the order of evaluation: never keep them.
            self.with_users(volatile)
            bad |= volatile
            volatile.clear()
        self.forget(bad)
        return True

    def with_users(self, nodes: set) -> None:
        """Adds to nodes every memoised node that used one of their values (deps: a node's kids come
        before it)."""
        for node, (_reads, kids) in self.deps.items():
            if kids and not nodes.isdisjoint(kids):
                nodes.add(node)

    def forget(self, nodes: set) -> None:
        """Drops the memoised values of nodes: the next round evaluates them again."""
        memo, deps, call_args = self.memo, self.deps, self.call_args
        for node in nodes:
            memo.pop(node, None)
            deps.pop(node, None)
            call_args.pop(node, None)

    def replay_calls(self, checker: Any, roots: list) -> None:
        """Hands every call to the checker, in the order a full evaluation round would reach it:
        depth first through the recorded uses, each call after what it evaluates. Repeated when a
        sub-analysis (exec("...")) finds the program near the control system only then."""
        order: list = []
        seen: set = set()
        deps, call_args = self.deps, self.call_args
        for root in roots:
            if root not in seen:
                _visit(root, deps, call_args, seen, order)
        for _ in range(2):
            near_before = self.near_cs
            checker.reset()
            on_call = checker.on_call
            for node in order:
                scope, fvals, args, kwargs = call_args[node]
                on_call(node, scope, fvals, args, kwargs)
            if self.near_cs == near_before:
                break

    def _all_star_scopes(self) -> list[list[str]]:
        return [self.c.module.stars] + [f.scope.stars for f in self.c.funcs]

    def run_events(self) -> None:
        ev = self.ev
        spec = self.spec
        add = self.add
        for event in self.c.events:
            match event[0]:
                case "c":  # ("c", scope, node): an expression evaluated for its effects (a call)
                    ev(event[2], event[1])
                case "b":  # ("b", scope, name, spec): name = what spec evaluates to
                    scope = event[1]
                    add(scope.bind, event[2], spec(event[3], scope))
                case "a":  # ("a", scope, target, spec): target.attr = ...
                    scope, target, sp = event[1], event[2], event[3]
                    values = spec(sp, scope)
                    for recv in ordered(ev(target.value, scope)):
                        t = type(recv)  # (an `is` ladder, not class patterns: see Calls.apply)
                        if t is Instance:
                            if self.instance_dicts:
                                self.store_attribute(recv.cid, target.attr, values)
                            add(self.attr_table, target.attr, values)
                        elif t in _ATTRIBUTE_HOLDERS or (t is Lib and not model.cs_root(recv.path)):
                            add(self.attr_table, target.attr, values)
                        elif t is Container:
                            add(self.containers, recv.key, values)
                case _:  # ("i", scope, target, spec): target[...] = ...
                    scope, target, sp = event[1], event[2], event[3]
                    values = spec(sp, scope)
                    for recv in ordered(ev(target.value, scope)):
                        if type(recv) is Container:
                            key = recv.key
                            add(self.containers, key, values)
                            if ("keys", key) in self.containers:
                                keys = ev(target.slice, scope)
                                add(self.containers, ("keys", key), keys)
                                if key[0] == "vars":  # obj.__dict__["name"] = v: obj.name is v
                                    for name in const_strings(keys):
                                        add(self.attr_table, name, values)

    def unresolved(self) -> frozenset:
        """What a value the analysis has nothing for is: nothing yet while the first fixpoint is
        sought (an attribute read before the store that sets it is evaluated, a list iterated
        before it is filled: those values come in a later round), unknown after it (see solve)."""
        if self.optimistic:
            self.bottoms += 1
            return EMPTY
        return UNK_SET

    def reach_cs(self) -> None:
        """The program uses the control system, found while solving (a kernel's name, an import by
        name): what was evaluated before assumed it does not (library_call, getattr): all again."""
        if not self.near_cs:
            self.near_cs = True
            self.reevaluate = True

    def attribute_names(self, cid: int) -> set | None:
        """The names an instance of the program's class cid may have an attribute under: what its
        classes bind and what the program stores on such instances. None when that is not all (a
        library base class, __getattr__)."""
        self.get(self.containers, ANY_ATTRIBUTE)  # (read: setattr with a computed name changes the answer)
        if self.any_attribute:
            return None
        names: set = set()
        for entry in self.class_chain(cid):
            if entry[0] != "c":
                if entry[1] != "builtins.object":
                    return None
                continue
            bound = self.c.classes[entry[1]].scope.locals  # every name the class body binds
            if "__getattr__" in bound or "__getattribute__" in bound:
                return None
            names.update(bound)
        names.update(v[1] for v in self.get(self.containers, ("keys", self.instance_dict(cid)[1])) if v[0] == "s")
        return names

    def set_attribute(self, obj: tuple, name: str, values: Any) -> None:
        """obj.name = values, where the assignment is evaluated once (a memoised call: a dataclass's
        constructor, setattr): the attribute table, and vars(obj) of an instance however it is used."""
        self.add(self.attr_table, name, values)
        if obj[0] == "i":
            self.store_attribute(obj[1], name, values)

    def store_attribute(self, cid: int, name: str, values: Any) -> None:
        """obj.name = values on an instance of class cid: also what vars(obj) and obj.__dict__ hold."""
        key = ("vars", cid)
        self.add(self.containers, ("keys", key), {Str(name, True)})
        self.add(self.containers, key, values)

    def instance_dict(self, cid: int) -> tuple:
        """vars(obj) / obj.__dict__ of an instance of class cid: a dict of the attributes stored on
        such instances (by the program, or by a dataclass's constructor)."""
        if not self.instance_dicts:  # from now on stores fill them: one more round sees them all
            self.instance_dicts = self.force_round = True
        key = ("vars", cid)
        for k in (key, ("keys", key)):
            if k not in self.containers:
                self.containers[k] = set()
        return Container(key)

    def get(self, table: Table, key: Any) -> Any:
        """Reads a binding table and records the read (see invalidate)."""
        self.reads.append((table.stamp, key, self.tick))
        return table.get(key, EMPTY)

    def add(self, table: Table, key: Any, values: Any) -> None:
        """Adds values to a binding; a change stamps it (see invalidate). What is added is a function
        of the binding and the values as sets, never of their order (sets iterate in hash order,
        and string hashes differ from process to process): the same program, the same analysis."""
        if not values:
            return
        cur = table.get(key)
        if not cur:
            if cur is None:
                cur = table[key] = set()
            new = values
        elif cur.issuperset(values):
            return
        else:
            new = values - cur if type(values) is frozenset else {v for v in values if v not in cur}
            if self.round_no < WIDEN_FROM_ROUND:
                new = widen_chains(cur, new, self.keep)
            else:
                new = widen_late(cur, new, self.keep)
            if not new:
                return
        cur.update(new)
        if len(cur) > MAX_STRINGS and any(v[0] == "s" or v[0] == "po" or v[0] == "p" for v in new):
            merged = merge_many(cur, self.keep)
            if merged is not cur:
                cur.clear()
                cur.update(merged)
        self.tick += 1
        table.stamp[key] = self.tick

    # ---- specs -------------------------------------------------------------------------------
    def spec(self, spec: tuple, scope: Scope) -> frozenset:
        """What a spec of pass 1 (collect.py) evaluates to in scope."""
        match spec[0]:
            case "expr":  # ("expr", node)
                return self.ev(spec[1], scope)
            case "expr_in":  # ("expr_in", node, scope)
                return self.ev(spec[1], spec[2])
            case "elem":  # ("elem", spec)
                return self.elements(self.spec(spec[1], scope))
            case "item":  # ("item", spec, i)
                inner = spec[1]
                i = spec[2]
                if inner[0] == "expr" and type(inner[1]) in (ast.Tuple, ast.List):
                    elts = inner[1].elts
                    if 0 <= i < len(elts) and not any(type(e) is ast.Starred for e in elts):
                        return self.ev(elts[i], scope)
                return self.item(self.spec(inner, scope), i)
            case "members":  # ("members", spec)
                return self.members(self.spec(spec[1], scope))
            case "attr_of":  # ("attr_of", spec, name)
                out: set = set()
                for v in ordered(self.spec(spec[1], scope)):
                    out.update(self.attr(v, spec[2]))
                return frozenset(out) if out else self.unresolved()
            case "enter":  # ("enter", spec)
                return self.entered(self.spec(spec[1], scope))
            case "in":  # ("in", spec, scope)
                return self.spec(spec[1], spec[2])
            case "value_of_container":  # ("value_of_container", spec)
                return self.spec(spec[1], scope)
            case "import":  # ("import", path)
                return frozenset({lib(norm(spec[1]))})
            case "value":  # ("value", value)
                return frozenset({spec[1]})
        return UNK_SET

    # ---- names -------------------------------------------------------------------------------
    def lookup(self, scope: Scope, name: str) -> frozenset:
        s = scope
        if name in s.globals:
            return self._module_name(name)
        if name in s.nonlocals:
            p = s.parent
            while p is not None:
                if p.kind == "function" and name in p.locals:
                    return frozenset(self.get(p.bind, name))
                p = p.parent
            return self._module_name(name)
        if name in s.locals:
            if s.kind == "module":
                return self._module_name(name)
            return frozenset(self.get(s.bind, name))
        p = s.parent
        while p is not None:
            if p.kind == "module":
                break
            if p.kind != "class" and name in p.locals and name not in p.globals:
                return frozenset(self.get(p.bind, name))
            p = p.parent
        return self._module_name(name)

    def _module_name(self, name: str) -> frozenset:
        m = self.c.module
        if name in m.locals:
            values = self.get(m.bind, name)
            if values:
                return frozenset(values)
            if self.optimistic:  # bound by the program, not yet evaluated (see unresolved)
                return self.unresolved()
        return self.free(name)

    def free(self, name: str) -> frozenset:
        """A name the program never binds: a star import's, the outer program's (exec), a kernel's
        or a builtin (memoised: it depends on the name only)."""
        got = self.free_memo.get(name)
        if got is None:
            got = self.free_memo[name] = self._free(name)
        return got

    def _free(self, name: str) -> frozenset:
        out = set()
        for mod in self.c.module.stars:
            out.add(lib(norm(f"{mod}.{name}")))
        if self.outer is not None:
            # The outer program's functions, classes, instances and containers are its own (their
            # ids mean nothing here): unknown, as values.
            out.update(v if v[0] in _PORTABLE_KINDS else UNK for v in self.outer._module_name(name))
        if name == "__builtins__":
            out.add(lib("builtins"))
        kernel = model.KERNEL_NAMES.get(name)
        if kernel is not None and name not in BUILTIN_NAMES:
            self.reach_cs()
            self.kernel_names_used.add(name)
            out.add(lib(kernel))
        elif name in BUILTIN_NAMES:
            out.add(lib("builtins." + name))
        if not out:
            out.add(UNK)
        return frozenset(out)

    # ---- expressions -------------------------------------------------------------------------
    def ev(self, node: Any, scope: Scope) -> frozenset:
        t = type(node)
        if t is _Name:
            # Names and constants are not memoised: looking them up again costs less than the
            # bookkeeping, and a name's read is then recorded in whatever evaluated it.
            return self.lookup(scope, node.id)
        if t is _Constant:
            v = node.value
            if type(v) is str:
                return string_set(v)
            if type(v) is bytes:  # as text: b"caput X 1" runs the same command
                return frozenset({Str(v[:4000].decode("latin-1"), len(v) <= 4000)})
            return CONST_SET
        got = self.memo.get(node)
        if got is not None:
            self.kids.append(node)
            return got
        handler = _EV.get(t)
        if handler is None:
            result = CONST_SET
        else:
            reads, kids, cuts, bottoms = self.reads, self.kids, self.cuts, self.bottoms
            frame = self.reads, self.kids = [], []
            result = handler(self, node, scope)
            self.reads, self.kids = reads, kids
            if self.cuts != cuts:
                self.volatile.add(node)
            if self.bottoms != bottoms:
                self.optimistic_nodes.add(node)
            elif self.optimistic_nodes:
                self.optimistic_nodes.discard(node)
            if frame[0] or frame[1]:
                self.deps[node] = frame  # nodes that read nothing stay valid for good
            if len(result) > MAX_STRINGS:
                result = merge_many(result, self.keep)
        self.memo[node] = result
        self.kids.append(node)
        return result


def _visit(node: Any, deps: dict, call_args: dict, seen: set, order: list) -> None:
    """Post-order walk of the recorded uses (Solver.replay_calls); a plain function, not a closure
    (a recursive closure is a reference cycle, which would keep the tree for the cyclic collector)."""
    seen.add(node)
    frame = deps.get(node)
    if frame is not None:
        for kid in frame[1]:
            if kid not in seen:
                _visit(kid, deps, call_args, seen, order)
    if node in call_args:
        order.append(node)


_EV = {
    ast.Attribute: Solver.ev_attribute,
    ast.Subscript: Solver.ev_subscript,
    ast.Call: Solver.ev_call,
    ast.List: Solver.ev_seq,
    ast.Tuple: Solver.ev_seq,
    ast.Set: Solver.ev_seq,
    ast.Dict: Solver.ev_dict,
    ast.ListComp: Solver.ev_comp,
    ast.SetComp: Solver.ev_comp,
    ast.GeneratorExp: Solver.ev_comp,
    ast.DictComp: Solver.ev_comp,
    ast.Lambda: Solver.ev_lambda,
    ast.IfExp: Solver.ev_ifexp,
    ast.BoolOp: Solver.ev_boolop,
    ast.NamedExpr: Solver.ev_passthrough,
    ast.Await: Solver.ev_passthrough,
    ast.Starred: Solver.ev_passthrough,
    ast.JoinedStr: Solver.ev_joinedstr,
    ast.BinOp: Solver.ev_binop,
    ast.Yield: Solver.ev_yield,
}
