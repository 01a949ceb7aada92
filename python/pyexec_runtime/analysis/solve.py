"""Pass 2: abstract evaluation of the events of pass 1 until nothing changes.

Abstract values are small tuples:
  ("p", path)              something reached from an import or a builtin: "epics.caput", "epics.PV()"
  ("f", fid)               a function or lambda of the program
  ("m", fid, self_value)   a method bound to an instance of a class of the program
  ("c", cid) / ("i", cid)  a class of the program / one of its instances
  ("k", key)               a container (list, dict, namespace ...) whose members are tracked together;
                           a dict's keys are tracked apart (containers[("keys", key)], what iterating
                           it gives), and a tuple's members by position where known (Solver.positions)
  ("ka", key, name)        a method of a container (append, get, ...)
  ("s", text, complete)    a string (complete=False: only the constant parts are known, "\\x00" between)
  ("po", text|None)        a pathlib path
  ("u", name)              something the analysis cannot resolve (name: the last attribute, if any)
  ("u", name, root)        the same, reached from the library `root` by a chain the analysis stopped
                           following (see Solver.add: a binding whose values keep extending themselves)
  ("d", reason)            the result of dynamic access on or near the control system
  ("g",)                   the dict returned by globals()
  ("const",)               anything else: numbers, booleans, results of ordinary operations
"""

from __future__ import annotations

import ast
import builtins
import functools
import itertools
import re
from typing import Any

from . import model
from .collect import Collected, Scope, Table

CONST = ("const",)
UNK = ("u", None)
EMPTY: frozenset = frozenset()
CONST_SET = frozenset({CONST})
UNKNOWN_STRING = ("s", "\x00", False)
UNK_SET = frozenset({UNK})
BUILTIN_NAMES = frozenset(dir(builtins))
# A value set holding more distinct strings (or pathlib paths) than this has them merged into one
# incomplete string that stands for all of them (see merge_many): string concatenation multiplies
# value sets, and `a + b + c + d` over lists of constants would otherwise make millions.
MAX_STRINGS = 32
# Likewise library paths: past this many in one value set, each is replaced by its widened form
# (widened_path: bounded by the program's attribute names).
MAX_LIBRARY_PATHS = 64
# String methods whose result the analysis follows (Solver.string_method); any other gives a constant.
STRING_METHODS = frozenset(
    {
        "format",
        "join",
        "replace",
        "strip",
        "lstrip",
        "rstrip",
        "lower",
        "upper",
        "title",
        "capitalize",
        "casefold",
        "swapcase",
        "split",
        "rsplit",
        "splitlines",
        "removeprefix",
        "removesuffix",
        "zfill",
        "encode",
        "decode",
    }
)
# How many combinations of known strings a format, a join or an f-string is evaluated for; past it,
# one incomplete string that keeps every known text (words stay visible: a command-line tool's name).
MAX_COMBINATIONS = 16
MERGED = "\x00\n"  # text of a merged value: this marker, then the merged texts one per line
MAX_MERGED_TEXT = 1_000_000
# A new path, string or pathlib path of a binding that extends CHAIN_DEPTH or more of the binding's
# values (`x = x.T`, `s = s + "/"`, `p = p / "d"` in a loop or a cycle) is widened, so the fixpoint
# ends: the values that extend fewer stay exact.
CHAIN_DEPTH = 2
# Cycles through several bindings grow a path by a step per round in each: a binding's path with
# more calls or subscripts (epics.PV() has one, epics.caget()[0] two), or more attributes, than
# these is widened the same way.
MAX_PATH_CALLS = 3
MAX_PATH_ATTRIBUTES = 12
# From this round on, a binding that already has values takes no new unbounded value (a path, a
# string, a pathlib path) as it is, only its widened form (see widen_late): the fixpoint then ends
# in a few more rounds. The fixtures and the benchmark program settle by round 3.
WIDEN_FROM_ROUND = 5
# Rounds in which a value the analysis has nothing for yet stays nothing (see Solver.unresolved):
# the first evaluates module code before the functions and methods it calls (a store in __init__
# comes after the module code that reads the attribute); the second sees those stores.
OPTIMISTIC_ROUNDS = 2
ANY_ATTRIBUTE = ("any_attribute",)  # container key stamped when setattr gets a computed name
MAX_PATH = 240
CONTAINER_METHODS_RETURNING_MEMBERS = frozenset({"get", "pop", "popitem", "popleft", "setdefault", "__getitem__"})
CONTAINER_METHODS_RETURNING_SELF = frozenset({"values", "items", "keys", "copy"})
CONTAINER_MUTATORS = frozenset({"append", "add", "insert", "appendleft", "setdefault"})
CONTAINER_BULK_MUTATORS = frozenset({"extend", "update", "extendleft"})
# A library object that holds things (queue.Queue(), tqdm(pvs), pandas.Series(motors)) is also a
# container of its own (key ("lib", where it is made): Solver.library_object): filled by the
# arguments it is made from and by LIBRARY_STORES, handed back by iteration, subscripts,
# LIBRARY_FETCHES and LIBRARY_VIEWS, and to the functions its mapping methods (apply, map) call.
LIBRARY_CONTAINERS = frozenset(
    {
        "Queue",
        "LifoQueue",
        "PriorityQueue",
        "SimpleQueue",
        "JoinableQueue",
        "Series",
        "DataFrame",
        "Index",
        "UserList",
        "UserDict",
        "SortedList",
        "SortedDict",
        "WeakSet",
        "WeakValueDictionary",
        "tqdm",
        "trange",
        "track",
        "progressbar",
        "alive_it",
    }
)
LIBRARY_STORES = frozenset({"put", "put_nowait", "append", "appendleft", "add", "insert", "push"})
LIBRARY_BULK_STORES = frozenset({"extend", "extendleft", "update"})
LIBRARY_FETCHES = frozenset({"get", "get_nowait", "pop", "popleft", "popitem", "__next__", "item", "first", "last"})
LIBRARY_VIEWS = frozenset(
    {
        "tolist",
        "to_list",
        "to_numpy",
        "copy",
        "dropna",
        "head",
        "tail",
        "unique",
        "sort_index",
        "sort_values",
        "values",
        "iloc",
        "loc",
        "at",
        "iat",
        "array",
        "queue",
        "T",
    }
)
_CONTAINER_METHODS = (
    CONTAINER_METHODS_RETURNING_MEMBERS
    | CONTAINER_METHODS_RETURNING_SELF
    | CONTAINER_MUTATORS
    | CONTAINER_BULK_MUTATORS
)


_Name = ast.Name
_Constant = ast.Constant
_NORM_CACHE: dict[str, str] = {}
_NORM_CACHE_MAX = 20_000


def norm(path: str) -> str:
    """Canonical spelling of a path (model.ALIASES), applied until stable (memoised: a pure function)."""
    got = _NORM_CACHE.get(path)
    if got is not None:
        return got
    if len(_NORM_CACHE) >= _NORM_CACHE_MAX:
        _NORM_CACHE.clear()
    got = _NORM_CACHE[path] = _norm(path)
    return got


def _norm(path: str) -> str:
    for _ in range(4):
        cut = len(path)
        end = cut
        for sep in ".([":
            i = path.find(sep)
            if 0 <= i < end:
                end = i
        if path[:end] not in _ALIAS_ROOTS:
            return path
        found = None
        i = len(path)
        while i > 0:
            pre = path[:i]
            hit = model.ALIASES.get(pre)
            if hit is not None and hit != pre:
                found = hit + path[i:]
                break
            i = _prev_cut(path, i)
        if found is None:
            return path
        path = found
    return path


def _prev_cut(path: str, i: int) -> int:
    j = i - 1
    while j > 0:
        ch = path[j]
        if ch in ".([":
            return j
        if path[j - 1] in ")]":
            return j
        j -= 1
    return 0


_ALIAS_ROOTS = frozenset(k.split(".", 1)[0].split("(", 1)[0] for k in model.ALIASES)


# Kinds of values that mean the same in the solver of code run by exec() (see Solver._free).
_PORTABLE_KINDS = frozenset({"p", "s", "po", "d", "u", "const", "g"})


class Solver:
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
        self.keep: Any = _keep_nothing  # paths never widened (set by the checker: see widen_chains)

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
            kind = event[0]
            if kind == "c":
                ev(event[2], event[1])
            elif kind == "b":
                scope = event[1]
                add(scope.bind, event[2], spec(event[3], scope))
            elif kind == "a":
                scope, target, sp = event[1], event[2], event[3]
                values = spec(sp, scope)
                for recv in ordered(ev(target.value, scope)):
                    k = recv[0]
                    if k == "i" and self.instance_dicts:
                        self.store_attribute(recv[1], target.attr, values)
                    if k in ("i", "u", "c", "f", "m") or (k == "p" and not model.cs_root(recv[1])):
                        add(self.attr_table, target.attr, values)
                    elif k == "k":
                        add(self.containers, recv[1], values)
            else:
                scope, target, sp = event[1], event[2], event[3]
                values = spec(sp, scope)
                for recv in ordered(ev(target.value, scope)):
                    if recv[0] == "k":
                        add(self.containers, recv[1], values)
                        if ("keys", recv[1]) in self.containers:
                            keys = ev(target.slice, scope)
                            add(self.containers, ("keys", recv[1]), keys)
                            if recv[1][0] == "vars":  # obj.__dict__["name"] = v: obj.name is v
                                for name in _const_str(keys):
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
        self.add(self.containers, ("keys", key), {("s", name, True)})
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
        return ("k", key)

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
        kind = spec[0]
        if kind == "expr":
            return self.ev(spec[1], scope)
        if kind == "expr_in":
            return self.ev(spec[1], spec[2])
        if kind == "elem":
            return self.elements(self.spec(spec[1], scope))
        if kind == "item":
            inner = spec[1]
            i = spec[2]
            if inner[0] == "expr" and type(inner[1]) in (ast.Tuple, ast.List):
                elts = inner[1].elts
                if 0 <= i < len(elts) and not any(type(e) is ast.Starred for e in elts):
                    return self.ev(elts[i], scope)
            return self.item(self.spec(inner, scope), i)
        if kind == "members":
            return self.members(self.spec(spec[1], scope))
        if kind == "attr_of":
            out: set = set()
            for v in ordered(self.spec(spec[1], scope)):
                out.update(self.attr(v, spec[2]))
            return frozenset(out) if out else self.unresolved()
        if kind == "enter":
            return self.entered(self.spec(spec[1], scope))
        if kind == "in":
            return self.spec(spec[1], spec[2])
        if kind == "value_of_container":
            return self.spec(spec[1], scope)
        if kind == "import":
            path = norm(spec[1])
            return frozenset({("p", path)})
        if kind == "value":
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
            out.add(("p", norm(f"{mod}.{name}")))
        if self.outer is not None:
            # The outer program's functions, classes, instances and containers are its own (their
            # ids mean nothing here): unknown, as values.
            out.update(v if v[0] in _PORTABLE_KINDS else UNK for v in self.outer._module_name(name))
        if name == "__builtins__":
            out.add(("p", "builtins"))
        kernel = model.KERNEL_NAMES.get(name)
        if kernel is not None and name not in BUILTIN_NAMES:
            self.reach_cs()
            self.kernel_names_used.add(name)
            out.add(("p", kernel))
        elif name in BUILTIN_NAMES:
            out.add(("p", "builtins." + name))
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
                return frozenset({("s", v[:4000], len(v) <= 4000)})
            if type(v) is bytes:  # as text: b"caput X 1" runs the same command
                return frozenset({("s", v[:4000].decode("latin-1"), len(v) <= 4000)})
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

    def ev_attribute(self, node: Any, scope: Scope) -> frozenset:
        out = set()
        name = node.attr
        for v in ordered(self.ev(node.value, scope)):
            out.update(self.attr(v, name))
        return frozenset(out)

    def attr(self, v: tuple, name: str) -> set:
        k = v[0]
        if k == "p":
            path = v[1]
            if len(path) > MAX_PATH:
                root = path.split(".", 1)[0]
                return {("p", root + ".<deep>")}
            if path == "pathlib.Path" and name in ("home", "cwd"):
                return {("p", "pathlib.Path." + name)}
            if name == "__class__" and path.endswith("()"):
                return {("p", path[:-2])}
            if name == "__call__":
                return {v}
            return {("p", norm(f"{path}.{name}"))}
        if k == "i":
            return self.inst_attr(v[1], name, v)
        if k == "c":
            return self.class_attr(v[1], name)
        if k == "k":
            if v[1][0] == "lib":  # a library object's: its own methods, or a view of what it holds
                return {v} if name in LIBRARY_VIEWS else {("ka", v[1], name)}
            out = {("ka", v[1], name)}
            if name not in _CONTAINER_METHODS:
                out.update(self.get(self.containers, v[1]))  # SimpleNamespace-like objects
            return out
        if k == "d":
            return {v}
        if k == "po":
            return {("pom", v[1], name)}
        if k in ("s", "const", "ka", "pom"):
            return {("smeth", v, name)} if name in STRING_METHODS else {CONST}
        out = {("u", name, v[2]) if k == "u" and len(v) > 2 else ("u", name)}
        out.update(self.get(self.attr_table, name))
        return out

    def class_chain(self, cid: int, seen: set | None = None) -> list:
        """The class and its local base classes (method resolution, roughly), then path bases."""
        seen = seen or set()
        if cid in seen:
            return []
        seen.add(cid)
        info = self.c.classes[cid]
        chain: list = [("c", cid)]
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
                out.add(("p", norm(f"{entry[1]}.{name}")))
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
                            out.add(("m", val[1], inst if kind == "method" else ("c", cid)))
                        elif kind == "property" or val[0] == "pr":  # @property, or x = property(getter)
                            out.update(self.call_function(val[1], inst, [], {}))
                        else:
                            out.add(val)
                    break
            else:
                out.add(("p", norm(f"{entry[1]}().{name}")))
        out.update(self.get(self.attr_table, name))  # (stored on some object: not asked of __getattr__)
        if not out and not name.startswith("__") and not self.optimistic:
            # class Ring: def __getattr__(self, name): return PV(...) (once the stores the program
            # makes have been seen: an attribute stored later is not __getattr__'s)
            got = self.special_method(inst, "__getattr__", [frozenset({("s", name, True)})])
            if got is not None:
                out.update(got)
                if self.opaque(cid):
                    out.add(("u", name))
        if not out and self.unresolved():
            out.add(("u", name))
        return out

    def ev_subscript(self, node: Any, scope: Scope) -> frozenset:
        keys = self.ev(node.slice, scope)
        const_keys = sorted(k[1] for k in keys if k[0] == "s" and k[2])
        computed = any(k[0] != "s" or not k[2] for k in keys)
        out = set()
        for v in self.ev(node.value, scope):
            k = v[0]
            if k == "k":
                out.update(self.get(self.containers, v[1]) or self.unresolved())
            elif k == "p":
                path = v[1]
                if path == "sys.modules" or path.endswith(".__dict__") or path == "builtins.vars()":
                    base = None if path == "sys.modules" else path[: -len(".__dict__")]
                    for key in const_keys:
                        out.add(("p", norm(key if base is None else f"{base}.{key}")))
                    if computed:
                        out.add(("d", f"`{_src(node)}` looks a name up with a computed key"))
                elif path == "os.environ":
                    out.add(("s", "", False))
                else:
                    out.add(("p", norm(path + "[]")))
            elif k == "g":
                for key in const_keys:
                    out.update(self._module_name(key))
                if computed:
                    out.add(("d", f"`{_src(node)}` looks a global up with a computed key"))
            elif k == "d":
                out.add(v)
            elif k == "i" and (
                (got := self.special_method(v, "__getitem__", [keys])) is not None
                or (got := self.special_method(v, "__missing__", [keys])) is not None
            ):
                out.update(got)  # a class of the program's with __getitem__, or a dict subclass's __missing__
                if self.opaque(v[1]):
                    out.add(unknown_from(v))
            elif k in ("u", "i", "f", "m"):
                out.add(unknown_from(v))
            else:
                out.add(CONST)
        return frozenset(out)

    def elements(self, values: frozenset) -> frozenset:
        """What iterating values gives (a dict: its keys)."""
        out = set()
        containers = self.containers
        for v in values:
            k = v[0]
            if k == "k":
                keys = ("keys", v[1])
                out.update(self.get(containers, keys if keys in containers else v[1]))
            elif k == "p":
                out.add(("p", norm(v[1] + "[]")))
            elif k == "d":
                out.add(v)
            elif k == "i" and (got := self.special_method(v, "__iter__", [])) is not None:
                if self.opaque(v[1]):
                    out.add(unknown_from(v))
                for it in got:  # a class of the program's with __iter__
                    if it[0] == "i":  # an iterator of the program's (often itself): what __next__ returns
                        nxt = self.special_method(it, "__next__", [])
                        out.update(nxt if nxt is not None else (unknown_from(it),))
                    else:
                        out.update(self.elements(frozenset((it,))))
            elif k in ("u", "i", "f", "m", "ka"):
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
        return ("k", key)

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
        return frozenset({("k", key)})

    def pair_of(self, node: Any, parts: list) -> Any:
        """zip / enumerate at node: a container of one positional container standing for every
        tuple it yields; returns the outer container's key."""
        key = self.node_key(node)
        pair = ("tuple", key)
        self.add(self.containers, pair, self.record_positions(pair, parts))
        self.add(self.containers, key, {("k", pair)})
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
            self.add(containers, ("keys", key), self.members(values) if name is None else {("s", name, True)})
            self.add(containers, key, values)

    def ev_yield(self, node: Any, scope: Scope) -> frozenset:
        """`x = yield v`: what the generator is sent (gen.send(x)), or None."""
        if scope.kind != "function":
            return CONST_SET
        return CONST_SET | self.get(self.containers, ("sent", scope.owner))

    def ev_lambda(self, node: Any, scope: Scope) -> frozenset:
        inner = self.c.node_scope.get(id(node))
        return frozenset({("f", inner.owner)}) if inner is not None else UNK_SET

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
                parts.append(frozenset({("s", v.value, True)}))
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
                            text = _collapse_unknown(text)
                        out.add(("s", text[:4000], lv[2] and rv[2]))
                    else:
                        out.add(("s", _collapse_unknown(lv[1] + "\x00"), False))
            elif lv[0] == "s" and op is ast.Mod:
                parts = self.literal_parts(node.right, scope)
                if parts is None:  # one value, or a mapping ("%(tool)s" % d): its strings as well
                    mappings = frozenset(v for v in right if v[0] == "k")
                    parts = [right | self.members(mappings) if mappings else right]
                out.update(formatted(lv[1], lv[2], parts, {}, _percent))
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
                    out.add(("po", None if base is None else f"{base}/{text}"))
        if not out:
            if any(v[0] == "s" for v in right) and op is ast.Add:
                out.add(("s", "\x00", False))
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

    # ---- calls -------------------------------------------------------------------------------
    def apply(self, f: tuple, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
        k = f[0]
        if k == "p":
            special = _SPECIAL.get(f[1])
            if special is not None:
                return special(self, node, scope, args, kwargs)
            path = f[1]
            if len(path) > MAX_PATH:
                return {("p", path.split(".", 1)[0] + ".<deep>")}
            if args and path.endswith((".__getattribute__", ".__getattr__")):  # x.__getattribute__("caput")
                return _sp_getattr(self, node, scope, [frozenset({("p", path.rsplit(".", 1)[0])}), *args], kwargs)
            result = {("p", norm(path + "()"))}
            if self.near_cs:
                if _followed_library_call(path):
                    if args or kwargs:
                        self.library_call(node, scope, path, args, kwargs, result)
                    made = self.library_object(node, path, args, kwargs)
                    if made is not None:
                        result.add(made)
                elif model.cs_root(path) and _has_function(args, kwargs):
                    self.control_system_callback(node, scope, path, args, kwargs)
            return result
        if k == "f":
            return self.call_function(f[1], None, args, kwargs)
        if k == "m":
            return self.call_function(f[1], f[2], args, kwargs)
        if k == "c":
            inst = ("i", f[1])
            inits = [m for m in ordered(self.class_attr(f[1], "__init__")) if m[0] == "f"]
            for m in inits:
                self.call_function(m[1], inst, args, kwargs)
            fields = self.c.classes[f[1]].fields
            if not inits and fields:  # a dataclass: its fields hold the arguments
                for i, values in enumerate(args):
                    for name in fields[i:] if type(values) is Spread else fields[i : i + 1]:
                        self.set_attribute(inst, name, values)
                for name, values in kwargs.items():
                    if name in fields:
                        self.set_attribute(inst, name, values)
            return {inst}
        if k == "ka":
            if f[1][0] == "lib" and f[2] in model.MAPPING_CALLS:  # series.apply(f): f gets each element
                held = self.relevant(self.get(self.containers, f[1]))
                for values in args:
                    for g in ordered(values):
                        if g[0] == "f" or g[0] == "m":
                            self.apply(g, node, scope, [held], {})
            return self.container_method(f[1], f[2], args, kwargs)
        if k == "k":  # a namedtuple class (or a namespace called): an instance holding the arguments
            members: set = set()
            for values in [*args, *kwargs.values()]:
                members.update(values)
            return set(self.container(node, members))
        if k == "d":
            return {f}
        if k == "pom":
            if f[2] in ("joinpath", "with_name", "with_suffix", "resolve", "absolute", "expanduser"):
                return {("po", f[1])}
            return {CONST}
        if k == "smeth":
            return self.string_method(node, scope, f[1], f[2], args, kwargs)
        if k == "u":
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
        handle = frozenset({("p", obj)})
        info = ("cb_info", self.node_key(node))
        self.add(self.containers, info, self.record_positions(info, [CONST_SET, handle]))
        passed = {
            "pvname": frozenset({UNKNOWN_STRING}),
            "value": CONST_SET,
            "cb_info": frozenset({("k", info)}),
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
                self.add(table, info.vararg, (("k", key),))
        for name, values in kwargs.items():
            if name is not None and name in params:
                self.add(table, name, values)
            elif info.kwarg:
                key = ("kwargs", fid)
                self.add(self.containers, key, values)
                self.add(table, info.kwarg, (("k", key),))
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
                out.add(("k", key))
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
            words = _texts(self.elements(args[0])) if args else []
            return {("s", "\x00" + text.join(w for w, _ in words) + "\x00", False)}
        if name in ("split", "rsplit", "splitlines"):
            if complete and not args and not kwargs:
                words = text.splitlines() if name == "splitlines" else text.split()
                return set(self.container(node, {("s", w, True) for w in words}))
            return set(self.container(node, {("s", w, False) for w in text.replace("\x00", " \x00 ").split()}))
        if name == "format":
            return formatted(text, complete, args, kwargs, str.format)
        if name in ("encode", "decode"):  # bytes are followed as text
            return {base}
        if (
            complete
            and not kwargs
            and len(text) <= 4000
            and all(_texts(a) and all(c for _, c in _texts(a)) and len(a) == 1 for a in args)
        ):
            given = [_texts(a)[0][0] for a in args]
            growth = len(given[1]) * text.count(given[0]) if name == "replace" and len(given) > 1 and given[0] else 0
            if growth <= 100_000:  # "a".replace("a", s) on a long s, again and again: not built
                try:
                    return {("s", getattr(text, name)(*given)[:4000], True)}
                except (TypeError, ValueError):
                    return {CONST}
        return {("s", text, False)}

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
            return {("k", key)}
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
            return {("k", key)}
        return {CONST}

    def dict_method(self, key: Any, name: str, args: list, kwargs: dict) -> set | None:
        """The methods of a dict that involve its keys (None: as any container)."""
        containers = self.containers
        if name == "keys":
            return {("k", ("keys", key))}
        if name == "values":
            view = ("values", key)
            self.add(containers, view, self.get(containers, key))
            return {("k", view)}
        if name == "items":
            pair, view = ("pair", key), ("items", key)
            self.positions[pair] = (("keys", key), key)
            self.add(containers, pair, self.get(containers, ("keys", key)) | self.get(containers, key))
            self.add(containers, view, {("k", pair)})
            return {("k", view)}
        if name == "update":
            self.fill_dict(key, args, kwargs)
            return {CONST}
        if name == "setdefault" and args:
            self.add(containers, ("keys", key), args[0])
        return None


def _has_function(args: list, kwargs: dict) -> bool:
    """Whether a function or method of the program (or a container, which may hold one) is among
    the arguments of a call."""
    for values in [*args, *kwargs.values()]:
        for v in values:
            if v[0] == "f" or v[0] == "m" or v[0] == "k":
                return True
    return False


def _texts(values: frozenset) -> list:
    """The strings among values as (text, complete), sorted; a value that may be something else
    counts as an unknown string."""
    out = sorted({(v[1], v[2]) for v in values if v[0] == "s"})
    if len(out) < len(values):
        out.append(("\x00", False))
    return out


def joined(sep: str, parts: list) -> set:
    """sep.join over parts (value sets, in order): every combination up to MAX_COMBINATIONS, else one
    incomplete string with every known text of every part."""
    choices = [_texts(p) or [("\x00", False)] for p in parts]
    combos = 1
    for c in choices:
        combos *= len(c)
    if combos > MAX_COMBINATIONS:
        return {("s", "\x00" + sep.join(" ".join(t for t, _ in c) for c in choices)[:4000] + "\x00", False)}
    out = set()
    for combo in itertools.product(*choices):
        text = sep.join(t for t, _ in combo)
        out.add(("s", _collapse_unknown(text)[:4000], all(c for _, c in combo)))
    return out


_WIDE_FIELD = re.compile(r"\d{4,}")  # "{:>2000000000}": a field width the analysis does not build


def _percent(template: str, *args: str) -> str:
    return template % args


def formatted(template: str, complete: bool, parts: list, kwargs: dict, fmt: Any) -> set:
    """template.format(...) / template % (...): substituted for every combination of the parts' known
    strings (up to MAX_COMBINATIONS), an unknown part as "\x00"; past that, or where formatting
    fails, one incomplete string with the template's and the parts' known texts."""
    choices = [_texts(p) for p in parts]
    kw_names = sorted(k for k in kwargs if k is not None)
    kw_choices = [_texts(kwargs[k]) for k in kw_names]
    combos = 1
    for c in choices + kw_choices:
        combos *= len(c)
    if complete and combos <= MAX_COMBINATIONS and not _WIDE_FIELD.search(template):
        out = set()
        try:
            for combo in itertools.product(*choices, *kw_choices):
                pos, kws = combo[: len(choices)], combo[len(choices) :]
                text = (
                    fmt(template, *(t for t, _ in pos), **{n: t for n, (t, _) in zip(kw_names, kws, strict=False)})
                    if fmt is str.format
                    else fmt(template, *(t for t, _ in pos))
                )
                out.add(("s", _collapse_unknown(text)[:4000], all(c for _, c in combo)))
            return out
        except (IndexError, KeyError, ValueError, TypeError, AttributeError):
            pass
    words = " ".join(t for c in choices + kw_choices for t, _ in c)
    return {("s", _collapse_unknown(template.replace("\x00", "") + "\x00" + words + "\x00")[:4000], False)}


def ordered(values: Any) -> Any:
    """values in an order that is the same in every process (a set of strings iterates in hash
    order, which PYTHONHASHSEED changes): where evaluating one value may add to a binding, the order
    decides what the widening sees first (Solver.add), and where the checker reports, the order of
    the findings. Sets of one value, the common case, as they are."""
    return values if len(values) < 2 else sorted(values, key=repr)


def _collapse_unknown(text: str) -> str:
    while "\x00\x00" in text:
        text = text.replace("\x00\x00", "\x00")
    return text


class Spread(frozenset):
    """The values of a starred argument (f(*a)): one set for any number of positions."""

    __slots__ = ()


def unknown_from(v: tuple) -> tuple:
    """What the analysis knows of a call, an item or an element of v: nothing, except the library a
    widened value came from."""
    return ("u", None, v[2]) if v[0] == "u" and len(v) > 2 else UNK


def _boundary_prefixes(text: str, pool: set, seps: str) -> list:
    """The proper prefixes of a path text that are in pool, cut where a separator follows."""
    out = []
    for i in range(1, len(text)):
        if text[i] in seps and text[:i] in pool:
            out.append(text[:i])
    return out


def _keep_nothing(path: str) -> bool:
    return False


def _past_limits(path: str) -> bool:
    return path.count("(") + path.count("[") > MAX_PATH_CALLS or path.count(".") > MAX_PATH_ATTRIBUTES


def widen_chains(cur: set, new: set, keep: Any = _keep_nothing) -> set:
    """The new values of a binding, those that extend CHAIN_DEPTH or more of its values replaced
    (a path by an unresolved value that remembers its library, a string or a pathlib path by its
    longest such prefix followed by an unknown part). A path the checker needs as it is (keep: a
    write, a risky call, a control-system handle) stays exact within the length limits: there
    are finitely many of those, and widening them would lose what they are."""
    for v in new:
        if v[0] in _GROWING:
            break
    else:
        return new
    kinds = {v[0] for v in new}
    # Many new strings at once (a dict display's keys) are no growth chain, and merge_many folds them
    # into one value right after: comparing each with each would cost their number squared.
    if "s" in kinds and sum(1 for v in new if v[0] == "s") > MAX_STRINGS:
        kinds.discard("s")
    pools: dict[str, set] = {}
    for v in (*cur, *new):
        k = v[0]
        if (k == "p" or k == "s" or k == "po") and k in kinds and v[1] is not None:
            pools.setdefault(k, set()).add(v[1])
    out = set()
    for v in new:
        k = v[0]
        if k == "p":
            text = v[1]
            if _past_limits(text) or (
                len(_boundary_prefixes(text, pools["p"], ".([")) >= CHAIN_DEPTH and not keep(text)
            ):
                v = widened_path(text)
        elif k == "s" and "s" in pools and len(pools["s"]) > 1:
            # Strings grow at either end (s = s + "/", s = "(" + s + ")"): count what v contains.
            text = v[1]
            inner = _contained(text, pools["s"])
            if len(inner) >= CHAIN_DEPTH:
                v = _grown_string(text, inner)
        elif k == "po" and v[1] is not None and len(pools["po"]) > 1:
            text = v[1]
            prefixes = [p for p in pools["po"] if len(p) < len(text) and text.startswith(p + "/")]
            if len(prefixes) >= CHAIN_DEPTH:
                longest = max(prefixes, key=len)
                v = ("po", longest if longest.endswith("/\x00") else longest + "/\x00")
        if v not in cur:
            out.add(v)
    return out


def _contained(text: str, pool: Any) -> list[str]:
    """The strings of pool (with some known text) that text contains and is longer than."""
    return [p for p in pool if len(p) < len(text) and p in text and p.strip("\x00\n")]


def _grown_string(text: str, inner: list[str]) -> tuple:
    """A string that grew on strings of its binding (inner): the longest of them with unknown parts
    around it (at its end only when text starts with it)."""
    longest = max(inner, key=lambda p: (len(p), p))
    widened = (longest if text.startswith(longest) else "\x00" + longest) + "\x00"
    return ("s", _collapse_unknown(widened), False)


_GROWING = frozenset({"p", "s", "po"})


def widen_late(cur: set, new: set, keep: Any = _keep_nothing) -> set:
    """The new values of a binding late in the fixpoint: unbounded ones replaced by a value that
    stands for any of their kind (a path by an unresolved value that remembers its library),
    except what the checker needs as it is: a path it classifies (keep), a string or a pathlib
    path that names a command-line tool, holds code, a secrets path or a path outside the folder
    (model.interesting_text). A value passed down five levels of calls arrives late, and a
    `caput ...` command in it must still be seen."""
    out = set()
    for v in new:
        k = v[0]
        if k == "p":
            if _past_limits(v[1]) or not keep(v[1]):
                v = widened_path(v[1])
        elif k == "s":
            if not model.interesting_text(v[1]):
                v = UNKNOWN_STRING
            else:  # kept, unless it grows on the binding's own strings (then as in widen_chains)
                text = v[1]
                inner = _contained(text, [c[1] for c in cur if c[0] == "s"])
                if inner:
                    v = _grown_string(text, inner)
        elif k == "po":
            if v[1] is None or not model.interesting_text(v[1]):
                v = ("po", None)
        elif k == "pom":
            if v[1] is None or not model.interesting_text(v[1]):
                v = ("pom", None, v[2])
        elif k == "smeth":
            v = ("smeth", UNKNOWN_STRING, v[2])
        if v not in cur:
            out.add(v)
    return out


@functools.lru_cache(maxsize=_NORM_CACHE_MAX)
def widened_path(path: str) -> tuple:
    """What a path stands for once widened: an unresolved value with its last attribute name (None
    after a call or a subscript) and its library."""
    root = path.split(".", 1)[0].split("(", 1)[0].split("[", 1)[0]
    name = None
    if not path.endswith((")", "]")):
        name = path.rsplit(".", 1)[-1] if "." in path else None
    return ("u", name, root)


def merge_many(values: Any, keep: Any = _keep_nothing) -> Any:
    """values with its strings (and its pathlib paths) merged into one incomplete value when there
    are more than MAX_STRINGS of them; values itself when not. The merged text keeps every text, one
    per line after the MERGED marker (sorted: the same for the same set), so the checker still finds
    command-line tools, secrets and paths outside the folder in it (Checker.classify)."""
    strings = paths = libs = 0
    for v in values:
        k = v[0]
        if k == "s":
            strings += 1
        elif k == "po":
            paths += 1
        elif k == "p":
            libs += 1
    if strings <= MAX_STRINGS and paths <= MAX_STRINGS and libs <= MAX_LIBRARY_PATHS:
        return values
    out = set(values)
    if libs > MAX_LIBRARY_PATHS:
        for v in values:
            if v[0] == "p" and not keep(v[1]):
                out.discard(v)
                out.add(widened_path(v[1]))
    for kind, count in (("s", strings), ("po", paths)):
        if count <= MAX_STRINGS:
            continue
        texts: set[str] = set()
        for v in values:
            if v[0] == kind:
                out.discard(v)
                text = v[1] if v[1] is not None else "\x00"
                texts.update(text[len(MERGED) :].split("\n") if text.startswith(MERGED) else (text,))
        merged = MERGED + "\n".join(sorted(texts))
        if len(merged) > MAX_MERGED_TEXT:  # what is cut may be anything: an unknown part at the end
            merged = merged[:MAX_MERGED_TEXT] + "\n\x00"
        out.add(("s", merged, False) if kind == "s" else ("po", merged))
    return frozenset(out) if type(values) is frozenset else out


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


def _src(node: Any) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001
        return "..."
    return text if len(text) <= 60 else text[:57] + "..."


def _const_str(values: frozenset) -> list[str]:
    """The complete strings among values, sorted (see ordered)."""
    return sorted(v[1] for v in values if v[0] == "s" and v[2])


# ---- builtins and library functions that move values -----------------------------------------
def _sp_getattr(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    if len(args) < 2:
        return {UNK}
    out: set = set()
    names = _const_str(args[1])
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
            out.add(("d", f"`{_src(node)}` reads an attribute whose name is computed"))
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
def _followed_library_call(path: str) -> bool:
    """Whether a call of the library path with arguments goes through Solver.library_call (not a
    control-system call, nor one of the plain library calls that call back and hand back nothing)."""
    return not (
        model.cs_root(path)
        or path in model.PLAIN_BUILTINS
        or path.split(".", 1)[0].split("(", 1)[0] in model.PLAIN_CALL_ROOTS
    )


_BUILTIN_GATEWAY_CALLS = (
    "builtins.__import__",
    "builtins.eval",
    "builtins.exec",
    "builtins.vars",
    "builtins.globals",
    "builtins.locals",
    "builtins.getattr",
    "builtins.type",
    "builtins.compile",
    "builtins.super",
)


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
            out.add(("p", v[1][:-2]))
        elif v[0] == "i":
            out.add(("c", v[1]))
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
    out: set = {("p", "builtins.super()")}
    for entry in s.class_chain(cid)[1:]:
        if entry[0] == "p":
            out.add(("p", norm(entry[1] + "()")))
    return out


def _sp_import(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    values = args[0] if args else kwargs.get("name", EMPTY)
    names = _const_str(values)
    out: set = set()
    for n in names:
        if model.cs_root(n):
            s.reach_cs()
        root = n if node.func and _is_import_module(node) else n.split(".", 1)[0]
        out.add(("p", norm(root)))
    if len(names) < len(values) or not values:
        out.add(("d", f"`{_src(node)}` imports a module whose name is computed"))
    return out


def _is_import_module(node: Any) -> bool:
    f = node.func
    return (type(f) is ast.Attribute and f.attr == "import_module") or (type(f) is ast.Name and f.id == "import_module")


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
    names = _const_str(args[1])
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
    return {("pr", f[1]) for f in getters if f[0] == "f"} or {UNK}


def _sp_element(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    return set(s.elements(args[0])) if args else {UNK}


def _sp_dict(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # dict(mapping or pairs, **kw), OrderedDict(...), defaultdict(factory, ...)
    made = s.container(node, EMPTY, EMPTY)
    key = next(iter(made))[1]
    skip = 1 if _src(node.func).endswith("defaultdict") else 0
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
    return {("k", s.pair_of(node, parts))}


def _sp_enumerate(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    if not args or type(args[0]) is Spread:
        return _sp_container_of_elements(s, node, scope, args, kwargs)
    return {("k", s.pair_of(node, [CONST_SET, s.elements(args[0])]))}


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
    keys = _const_str(args[1])
    out: set = set()
    for v in args[0]:
        if v[0] == "k":
            out.update(s.get(s.containers, v[1]) or UNK_SET)
        elif v[0] == "p" and v[1].endswith(".__dict__"):
            base = v[1][: -len(".__dict__")]
            out.update(("p", norm(f"{base}.{k}")) for k in keys)
            if len(keys) < len(args[1]):
                out.add(("d", f"`{_src(node)}` looks a name up with a computed key"))
        elif v[0] == "g":
            for k in keys:
                out.update(s._module_name(k))
        else:
            out.add(unknown_from(v))
    return out or {UNK}


def _sp_vars(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    if not args:
        return {("g",)}
    out: set = set()
    for v in args[0]:
        if v[0] == "p":
            out.add(("p", v[1] + ".__dict__"))
        elif v[0] == "i":
            out.add(s.instance_dict(v[1]))
        else:
            out.add(UNK)
    return out


def _sp_globals(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    return {("g",)}


def _sp_path(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    if not args:
        return {("po", ".")}
    out: set = set()
    for v in args[0]:
        if v[0] == "s":
            out.add(("po", v[1] if v[2] else v[1].split("\x00", 1)[0] + "\x00"))
        elif v[0] == "po":
            out.add(v)
        else:
            out.add(("po", None))
    return out


def _sp_path_home(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    return {("po", "~" if "home" in _src(node.func) else ".")}


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
            out.add(("s", first[1] + "/\x00", False))
        else:
            for combo in itertools.product(*parts):
                tail = "/".join(text for text, _ in combo)
                complete = first[2] and all(c for _, c in combo)
                out.add(("s", first[1] + ("/" + tail if tail else ""), complete))
    return out


def _sp_shlex_join(s: Solver, node: Any, scope: Scope, args: list, kwargs: dict) -> set:
    # shlex.join(words): the command line of those words
    return s.string_method(node, scope, ("s", " ", True), "join", args, kwargs)


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
    return {("p", "threading.Timer()" if _src(node.func).endswith("Timer") else "threading.Thread()")}


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

_SPECIAL = {
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
    "typing.cast": lambda s, n, sc, a, k: set(a[1]) if len(a) > 1 else {UNK},
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
