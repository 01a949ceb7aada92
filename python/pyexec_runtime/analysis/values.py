"""The values of the analysis: the abstract value algebra the solver computes with (its kinds,
bounds and widening), and what it knows of strings, paths and containers.

Abstract values are small tuples, each kind a named type (below) whose first member is its tag, so a
value equals, hashes and sorts as the plain tuple it stands for: Lib("epics.caput") == ("p", "epics.caput").
The solver and the rules tell kinds apart with `match` on these types.
"""

from __future__ import annotations

import ast
import builtins
import functools
import itertools
import re
from typing import Any, NamedTuple

from . import model

_new = tuple.__new__


def _kind(tag: str, *fields: str) -> Any:
    """The NamedTuple a kind of value extends: its tag, then its fields."""
    return NamedTuple(f"_{tag}", [("tag", str), *((f, Any) for f in fields)])


# Each kind: built without its tag (Lib(path)), matched by its fields (case Lib(path)), shown as the
# tuple it is (the order of values, values.ordered, sorts by that text).
class Lib(_kind("p", "path")):
    """("p", path): something reached from an import or a builtin: "epics.caput", "epics.PV()"."""

    __slots__ = ()
    __match_args__ = ("path",)
    __repr__ = tuple.__repr__

    def __new__(cls, path: str) -> Lib:
        return _new(cls, ("p", path))


class Func(_kind("f", "fid")):
    """("f", fid): a function or lambda of the program."""

    __slots__ = ()
    __match_args__ = ("fid",)
    __repr__ = tuple.__repr__

    def __new__(cls, fid: int) -> Func:
        return _new(cls, ("f", fid))


class Method(_kind("m", "fid", "self_value")):
    """("m", fid, self_value): a method of the program bound to an instance of one of its classes."""

    __slots__ = ()
    __match_args__ = ("fid", "self_value")
    __repr__ = tuple.__repr__

    def __new__(cls, fid: int, self_value: Any) -> Method:
        return _new(cls, ("m", fid, self_value))


class Class(_kind("c", "cid")):
    """("c", cid): a class of the program."""

    __slots__ = ()
    __match_args__ = ("cid",)
    __repr__ = tuple.__repr__

    def __new__(cls, cid: int) -> Class:
        return _new(cls, ("c", cid))


class Instance(_kind("i", "cid")):
    """("i", cid): an instance of a class of the program."""

    __slots__ = ()
    __match_args__ = ("cid",)
    __repr__ = tuple.__repr__

    def __new__(cls, cid: int) -> Instance:
        return _new(cls, ("i", cid))


class Container(_kind("k", "key")):
    """("k", key): a container (list, dict, namespace ...) whose members are tracked together; a dict's
    keys are tracked apart (containers[("keys", key)], what iterating it gives), and a tuple's members
    by position where known (Solver.positions)."""

    __slots__ = ()
    __match_args__ = ("key",)
    __repr__ = tuple.__repr__

    def __new__(cls, key: Any) -> Container:
        return _new(cls, ("k", key))


class ContainerMethod(_kind("ka", "key", "name")):
    """("ka", key, name): a method of a container (append, get, ...)."""

    __slots__ = ()
    __match_args__ = ("key", "name")
    __repr__ = tuple.__repr__

    def __new__(cls, key: Any, name: str) -> ContainerMethod:
        return _new(cls, ("ka", key, name))


class Str(_kind("s", "text", "complete")):
    """("s", text, complete): a string (complete=False: only its constant parts are known, "\\x00"
    between them)."""

    __slots__ = ()
    __match_args__ = ("text", "complete")
    __repr__ = tuple.__repr__

    def __new__(cls, text: str, complete: bool) -> Str:
        return _new(cls, ("s", text, complete))


class StrMethod(_kind("smeth", "base", "name")):
    """("smeth", base, name): a method of a string value (or of a value that may be a string)."""

    __slots__ = ()
    __match_args__ = ("base", "name")
    __repr__ = tuple.__repr__

    def __new__(cls, base: Any, name: str) -> StrMethod:
        return _new(cls, ("smeth", base, name))


class PathObj(_kind("po", "text")):
    """("po", text|None): a pathlib path."""

    __slots__ = ()
    __match_args__ = ("text",)
    __repr__ = tuple.__repr__

    def __new__(cls, text: str | None) -> PathObj:
        return _new(cls, ("po", text))


class PathMethod(_kind("pom", "text", "name")):
    """("pom", text|None, name): a method of a pathlib path."""

    __slots__ = ()
    __match_args__ = ("text", "name")
    __repr__ = tuple.__repr__

    def __new__(cls, text: str | None, name: str) -> PathMethod:
        return _new(cls, ("pom", text, name))


class Property(_kind("pr", "fid")):
    """("pr", fid): a property of the program's, made by property(getter); fid: the getter."""

    __slots__ = ()
    __match_args__ = ("fid",)
    __repr__ = tuple.__repr__

    def __new__(cls, fid: int) -> Property:
        return _new(cls, ("pr", fid))


class Unknown(_kind("u", "name")):
    """("u", name): something the analysis cannot resolve (name: the last attribute, if any)."""

    __slots__ = ()
    __match_args__ = ("name",)
    __repr__ = tuple.__repr__

    def __new__(cls, name: str | None) -> Unknown:
        return _new(cls, ("u", name))


class UnknownFrom(_kind("u", "name", "root")):
    """("u", name, root): the same, reached from the library `root` by a chain the analysis stopped
    following (see Solver.add: a binding whose values keep extending themselves)."""

    __slots__ = ()
    __match_args__ = ("name", "root")
    __repr__ = tuple.__repr__

    def __new__(cls, name: str | None, root: str) -> UnknownFrom:
        return _new(cls, ("u", name, root))


class Dynamic(_kind("d", "reason")):
    """("d", reason): the result of dynamic access on or near the control system."""

    __slots__ = ()
    __match_args__ = ("reason",)
    __repr__ = tuple.__repr__

    def __new__(cls, reason: str) -> Dynamic:
        return _new(cls, ("d", reason))


class Globals(_kind("g")):
    """("g",): the dict returned by globals()."""

    __slots__ = ()
    __match_args__ = ()
    __repr__ = tuple.__repr__

    def __new__(cls) -> Globals:
        return _new(cls, ("g",))


class Const(_kind("const")):
    """("const",): anything else: numbers, booleans, results of ordinary operations."""

    __slots__ = ()
    __match_args__ = ()
    __repr__ = tuple.__repr__

    def __new__(cls) -> Const:
        return _new(cls, ("const",))


# Shared values for the hottest sites (a string constant is evaluated in every round, and most
# library paths are rebuilt the same in each): a class call into the generated __new__ costs
# ~0.6 µs, a lookup here ~0.1. Values are immutable and compare as the tuples they are, so equal
# values may be one object. The tables are emptied when full, as norm's, and keep only short
# texts (at most _SHARED_MAX entries of _SHARED_TEXT characters: a few MB in a long-lived helper).
_SHARED_MAX = 20_000
_SHARED_TEXT = 200
_LIBS: dict[str, Lib] = {}
_STRING_SETS: dict[str, frozenset] = {}


def lib(path: str) -> Lib:
    """Lib(path), shared."""
    got = _LIBS.get(path)
    if got is None:
        if len(path) > _SHARED_TEXT:
            return _new(Lib, ("p", path))
        if len(_LIBS) >= _SHARED_MAX:
            _LIBS.clear()
        got = _LIBS[path] = _new(Lib, ("p", path))
    return got


def string_set(text: str) -> frozenset:
    """The values of the string constant text: {Str(text, True)}, or the first 4,000 characters
    as an incomplete string; shared."""
    got = _STRING_SETS.get(text)
    if got is None:
        if len(text) > _SHARED_TEXT:
            return frozenset({_new(Str, ("s", text[:4000], len(text) <= 4000))})
        if len(_STRING_SETS) >= _SHARED_MAX:
            _STRING_SETS.clear()
        got = _STRING_SETS[text] = frozenset({_new(Str, ("s", text[:4000], len(text) <= 4000))})
    return got


CONST = Const()
UNK = Unknown(None)
EMPTY: frozenset = frozenset()
CONST_SET = frozenset({CONST})
UNKNOWN_STRING = Str("\x00", False)
UNK_SET = frozenset({UNK})
GLOBALS = Globals()
BUILTIN_NAMES = frozenset(dir(builtins))
# A value set holding more distinct strings (or pathlib paths) than this has them merged into one
# incomplete string that stands for all of them (see merge_many): string concatenation multiplies
# value sets, and `a + b + c + d` over lists of constants would otherwise make millions.
MAX_STRINGS = 32
# Likewise library paths: past this many in one value set, each is replaced by its widened form
# (widened_path: bounded by the program's attribute names).
MAX_LIBRARY_PATHS = 64
# String methods whose result the analysis follows (Solver.string_method); any other gives a constant.
# fmt: off
STRING_METHODS = frozenset({"format", "join", "replace", "strip", "lstrip", "rstrip", "lower", "upper", "title",
                            "capitalize", "casefold", "swapcase", "split", "rsplit", "splitlines", "removeprefix",
                            "removesuffix", "zfill", "encode", "decode"})
# fmt: on
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
CONTAINER_METHODS = (
    CONTAINER_METHODS_RETURNING_MEMBERS
    | CONTAINER_METHODS_RETURNING_SELF
    | CONTAINER_MUTATORS
    | CONTAINER_BULK_MUTATORS
)


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


def has_function(args: list, kwargs: dict) -> bool:
    """Whether a function or method of the program (or a container, which may hold one) is among
    the arguments of a call."""
    for values in [*args, *kwargs.values()]:
        for v in values:
            if v[0] == "f" or v[0] == "m" or v[0] == "k":
                return True
    return False


def texts_of(values: frozenset) -> list:
    """The strings among values as (text, complete), sorted; a value that may be something else
    counts as an unknown string."""
    out = sorted({(v[1], v[2]) for v in values if v[0] == "s"})
    if len(out) < len(values):
        out.append(("\x00", False))
    return out


def joined(sep: str, parts: list) -> set:
    """sep.join over parts (value sets, in order): every combination up to MAX_COMBINATIONS, else one
    incomplete string with every known text of every part."""
    choices = [texts_of(p) or [("\x00", False)] for p in parts]
    combos = 1
    for c in choices:
        combos *= len(c)
    if combos > MAX_COMBINATIONS:
        return {Str("\x00" + sep.join(" ".join(t for t, _ in c) for c in choices)[:4000] + "\x00", False)}
    out = set()
    for combo in itertools.product(*choices):
        text = sep.join(t for t, _ in combo)
        out.add(Str(collapse_unknown(text)[:4000], all(c for _, c in combo)))
    return out


_WIDE_FIELD = re.compile(r"\d{4,}")  # "{:>2000000000}": a field width the analysis does not build


def percent(template: str, *args: str) -> str:
    return template % args


def formatted(template: str, complete: bool, parts: list, kwargs: dict, fmt: Any) -> set:
    """template.format(...) / template % (...): substituted for every combination of the parts' known
    strings (up to MAX_COMBINATIONS), an unknown part as "\x00"; past that, or where formatting
    fails, one incomplete string with the template's and the parts' known texts."""
    choices = [texts_of(p) for p in parts]
    kw_names = sorted(k for k in kwargs if k is not None)
    kw_choices = [texts_of(kwargs[k]) for k in kw_names]
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
                out.add(Str(collapse_unknown(text)[:4000], all(c for _, c in combo)))
            return out
        except (IndexError, KeyError, ValueError, TypeError, AttributeError):
            pass
    words = " ".join(t for c in choices + kw_choices for t, _ in c)
    return {Str(collapse_unknown(template.replace("\x00", "") + "\x00" + words + "\x00")[:4000], False)}


def ordered(values: Any) -> Any:
    """values in an order that is the same in every process (a set of strings iterates in hash
    order, which PYTHONHASHSEED changes): where evaluating one value may add to a binding, the order
    decides what the widening sees first (Solver.add), and where the checker reports, the order of
    the findings. Sets of one value, the common case, as they are."""
    return values if len(values) < 2 else sorted(values, key=_sort_key)


class _Reprs(dict):
    """repr of values, kept (the sort key of ordered: a repr costs ~0.7 µs, a lookup ~0.1); short
    ones only, emptied when full, as the tables of shared values."""

    def __missing__(self, v: Any) -> str:
        text = repr(v)
        if len(text) <= _SHARED_TEXT:
            if len(self) >= _SHARED_MAX:
                self.clear()
            self[v] = text
        return text


_sort_key = _Reprs().__getitem__


def collapse_unknown(text: str) -> str:
    while "\x00\x00" in text:
        text = text.replace("\x00\x00", "\x00")
    return text


class Spread(frozenset):
    """The values of a starred argument (f(*a)): one set for any number of positions."""

    __slots__ = ()


def unknown_from(v: tuple) -> tuple:
    """What the analysis knows of a call, an item or an element of v: nothing, except the library a
    widened value came from."""
    return UnknownFrom(None, v[2]) if v[0] == "u" and len(v) > 2 else UNK


def _boundary_prefixes(text: str, pool: set, seps: str) -> list:
    """The proper prefixes of a path text that are in pool, cut where a separator follows."""
    out = []
    for i in range(1, len(text)):
        if text[i] in seps and text[:i] in pool:
            out.append(text[:i])
    return out


def keep_nothing(path: str) -> bool:
    return False


def _past_limits(path: str) -> bool:
    return path.count("(") + path.count("[") > MAX_PATH_CALLS or path.count(".") > MAX_PATH_ATTRIBUTES


def widen_chains(cur: set, new: set, keep: Any = keep_nothing) -> set:
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
                v = PathObj(longest if longest.endswith("/\x00") else longest + "/\x00")
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
    return Str(collapse_unknown(widened), False)


_GROWING = frozenset({"p", "s", "po"})


def widen_late(cur: set, new: set, keep: Any = keep_nothing) -> set:
    """The new values of a binding late in the fixpoint: unbounded ones replaced by a value that
    stands for any of their kind (a path by an unresolved value that remembers its library),
    except what the checker needs as it is: a path it classifies (keep), a string or a pathlib
    path that names a command-line tool, holds code, a secrets path or a path outside the folder
    (model.interesting_text). A value passed down five levels of calls arrives late, and a
    `caput ...` command in it must still be seen."""
    out = set()
    for v in new:
        match v:
            case Lib(path):
                if _past_limits(path) or not keep(path):
                    v = widened_path(path)
            case Str(text):
                if not model.interesting_text(text):
                    v = UNKNOWN_STRING
                else:  # kept, unless it grows on the binding's own strings (then as in widen_chains)
                    inner = _contained(text, [c[1] for c in cur if c[0] == "s"])
                    if inner:
                        v = _grown_string(text, inner)
            case PathObj(text):
                if text is None or not model.interesting_text(text):
                    v = PathObj(None)
            case PathMethod(text, name):
                if text is None or not model.interesting_text(text):
                    v = PathMethod(None, name)
            case StrMethod(_, name):
                v = StrMethod(UNKNOWN_STRING, name)
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
    return UnknownFrom(name, root)


def merge_many(values: Any, keep: Any = keep_nothing) -> Any:
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
        out.add(Str(merged, False) if kind == "s" else PathObj(merged))
    return frozenset(out) if type(values) is frozenset else out


def short_source(node: Any) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001
        return "..."
    return text if len(text) <= 60 else text[:57] + "..."


def const_strings(values: frozenset) -> list[str]:
    """The complete strings among values, sorted (see ordered)."""
    return sorted(v[1] for v in values if v[0] == "s" and v[2])


def widened_cs(v: tuple) -> bool:
    """Whether v is a widened value (widened_path) reached from a control-system library."""
    return v[0] == "u" and len(v) > 2 and model.cs_root(v[2])
