"""The command-line rules: the command lines a process call runs, cut into words the way a shell
does, and the control-system tools, interpreters and hidden commands in them (a mixin of Checker:
self is the checker)."""

from __future__ import annotations

import ast
import re
from typing import Any

from . import model
from .values import (
    EMPTY,
    MERGED,
    ordered,
)

_UNKNOWN_WORD = frozenset({""})
_SCRIPT_SUFFIXES = (".sh", ".bash", ".py", ".pl", ".rb", ".tcl", ".ipynb", ".csh", ".zsh", ".js")


_SYSTEM_DIRS = ("/usr/", "/bin/", "/sbin/")
_AWK = frozenset({"awk", "gawk", "mawk", "nawk"})
# awk code that runs commands: system(...), print ... | "cmd" (a pipe not between quotes: "|" is a
# separator), "cmd" | getline, and coprocesses (|&).
_AWK_COMMANDS = re.compile(r"\bsystem\s*\(|(?<![\"'])\|\s*\"|\|\s*getline\b|\|&")


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


def sent_write_tools(values: frozenset) -> list[str]:
    """The write tools that start a command line in the texts sent over a connection."""
    tools = set()
    for v in values:
        if v[0] == "s":
            for line in _command_segments(v[1]):
                tools.update(line[0] & model.CLI_WRITE_TOOLS)
    return sorted(tools)


class CommandLineRules:
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
