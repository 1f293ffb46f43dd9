"""The one reading of YAML: state files, history's old commits, the edit round-trip, configs.

Every YAML text regops (and the reference workload) reads goes through `read`:

- characters that change how a file displays (U+2028/U+2029/U+0085 line breaks that
  git does not count, bidi controls as in CVE-2021-42574, zero-width characters) are
  refused with the line git and editors show, so a reviewer sees what the loader reads;
- YAML aliases are refused (no billion laughs) and nesting is capped (no RecursionError);
- mapping keys are the text written (`on`, `null`, `017` stay those strings, never a
  bool, None or 15), while values keep YAML's usual types;
- a value YAML cannot construct (`2024-13-45`, `!!int abc`) or a tag a data file has
  no use for is a problem at its line, never an exception.

`lenient=True` is history's mode: an old commit is shown as far as it can be read
(display characters and bad scalars are kept as their text), never refused.
The edit commands' ruamel round trip comes from `round_trip()`, with the same rule
for keys (plain scalars stay the strings they are written as).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader
from yaml.resolver import Resolver

# Real state files nest about 7 levels; PyYAML composes recursively, so a deeper file
# would end in a RecursionError (a crash) rather than a problem report.
MAX_DEPTH = 64
PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
# Explicit scalar tags a data file may use; anything else (!!binary, !!timestamp,
# !!python/..., !custom) is refused.
SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}

KeyPath = tuple[str | int, ...]

# Characters that make a file display differently from what a parser reads.
DISPLAY_CHARS: dict[str, str] = {
    "\u0085": "NEXT LINE (a line break for YAML, not for git or most editors)",
    "\u2028": "LINE SEPARATOR (a line break for YAML, not for git or most editors)",
    "\u2029": "PARAGRAPH SEPARATOR (a line break for YAML, not for git or most editors)",
    "\u200b": "ZERO WIDTH SPACE",
    "\u200c": "ZERO WIDTH NON-JOINER",
    "\u200d": "ZERO WIDTH JOINER",
    "\u2060": "WORD JOINER",
    "\u180e": "MONGOLIAN VOWEL SEPARATOR",
    "\ufeff": "ZERO WIDTH NO-BREAK SPACE (a byte-order mark inside the text)",
    "\u061c": "ARABIC LETTER MARK (bidi control)",
    "\u200e": "LEFT-TO-RIGHT MARK (bidi control)",
    "\u200f": "RIGHT-TO-LEFT MARK (bidi control)",
    **{
        chr(c): f"{unicodedata.name(chr(c))} (bidi control, CVE-2021-42574)"
        for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    },
}


def display_problems(text: str) -> Iterator[tuple[int, str]]:
    """(line, message) for each character that changes how the text displays.

    Lines are counted as git and editors count them: by "\\n" only. A byte-order mark
    at the very start is allowed (editors hide it and YAML ignores it).
    """
    line, start = 1, 0
    for i, ch in enumerate(text):
        if ch == "\n":
            line, start = line + 1, i + 1
        elif ch in DISPLAY_CHARS and not (i == 0 and ch == "\ufeff"):
            yield (
                line,
                f"character U+{ord(ch):04X} {DISPLAY_CHARS[ch]} at column {i - start + 1}: "
                "it changes how the file displays (in review, the diff and editors) "
                "from what is read; remove it",
            )


@dataclass
class Document:
    """One parsed YAML text: its data, the line of every key and item, and its problems."""

    data: Any = None
    parsed: bool = False
    lines: dict[KeyPath, int] = field(default_factory=dict)
    written: dict[KeyPath, str] = field(default_factory=dict)  # scalar values as written
    problems: list[tuple[int, str]] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int:
        """The line of `path`, or of its nearest parent that has one."""
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)


class _Guards(Composer):
    """Composer override that refuses YAML aliases (no billion laughs) and nesting deeper
    than MAX_DEPTH (no RecursionError), whichever parser feeds it."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        events: Any = self  # the parser half of the loader (Python or libyaml)
        if events.check_event(AliasEvent):
            raise yaml.MarkedYAMLError(
                problem="YAML aliases (*name) are not allowed in state files",
                problem_mark=events.peek_event().start_mark,
            )
        if self._depth >= MAX_DEPTH:
            raise yaml.MarkedYAMLError(
                problem=f"nested deeper than {MAX_DEPTH} levels",
                problem_mark=events.peek_event().start_mark,
            )
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        assert node is not None
        return node


class _Loader(_Guards, yaml.SafeLoader):
    """The pure-Python SafeLoader with the guards: the reference, and every problem report."""


_CParser: Any = getattr(getattr(yaml, "cyaml", None), "CParser", None)
_FastLoader: Any = None
if _CParser is not None:

    class _FastLoader(_Guards, _CParser, SafeConstructor, Resolver):  # type: ignore[misc,no-redef]
        """libyaml scans and parses (most of the cost); composing stays in Python, guards
        included. Used for texts that load cleanly; any problem is re-read by _Loader so
        reports never depend on which parser ran."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)


_UNPRINTABLE = Reader.NON_PRINTABLE  # what PyYAML's reader refuses; libyaml differs slightly
_DISPLAY = re.compile("[" + "".join(DISPLAY_CHARS) + "]")


def _read_fast(text: str, *, lenient: bool, what: str) -> Document | None:
    """libyaml's parse; None (the caller re-reads in Python) on any problem at all."""
    if _FastLoader is None or _UNPRINTABLE.search(text):
        return None
    doc = Document()
    try:
        loader = _FastLoader(text)
    except Exception:
        return None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        doc.data = _Builder(doc, loader, lenient=lenient, what=what).convert(node, ())
    except Exception:
        return None
    finally:
        loader.dispose()
    if doc.problems:
        return None
    doc.parsed = True
    return doc


def read(text: str, *, lenient: bool = False, what: str = "state files") -> Document:
    """Parse one YAML document; problems are collected, never raised."""
    doc = Document()
    if not lenient and _DISPLAY.search(text):
        doc.problems.extend(display_problems(text))
        if any(ch in text for ch in "\u0085\u2028\u2029"):
            # YAML counts these as line breaks: every later line number would be off.
            return doc
    if not doc.problems:
        fast = _read_fast(text, lenient=lenient, what=what)
        if fast is not None:
            return fast
    try:
        loader = _Loader(text)  # checks every character up front
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"YAML error: unacceptable character #x{char:04x}: {exc.reason}"
        doc.problems.append((line, message))
        return doc
    try:
        node = loader.get_single_node()
        if node is None:
            doc.problems.append((1, f"file is empty (expected {_expected(what)})"))
            return doc
        doc.data = _Builder(doc, loader, lenient=lenient, what=what).convert(node, ())
        doc.parsed = True
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        context = ""
        if exc.context and exc.context_mark and exc.problem:  # where the unclosed thing began
            context = f" ({exc.context} at line {exc.context_mark.line + 1})"
        doc.problems.append((line, f"YAML error: {exc.problem or exc.context}{context}"))
        doc.data = None
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML marks its errors
        doc.problems.append((1, f"YAML error: {exc}"))
    finally:
        loader.dispose()
    return doc


def _expected(what: str) -> str:
    return "apiVersion and models" if what == "state files" else "a mapping"


def where(path: KeyPath) -> str:
    """`models.Fraud.versions.1`, or `the top level`."""
    return ".".join(str(p) for p in path) or "the top level"


class _Builder:
    def __init__(self, doc: Document, loader: Any, *, lenient: bool, what: str):
        self.doc, self.loader, self.lenient, self.what = doc, loader, lenient, what

    def problem(self, node: Node, message: str) -> None:
        if not self.lenient:
            self.doc.problems.append((node.start_mark.line + 1, message))

    def convert(self, node: Node, path: KeyPath) -> Any:
        # A mapping entry points at its key's line, not at where its value starts.
        self.doc.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, MappingNode | SequenceNode) and node.tag not in PLAIN_TAGS:
            # Collections would otherwise be read as plain ones with their tag
            # (!!python/..., !!set, !!omap) silently ignored.
            self.problem(node, f"YAML tag {_short_tag(node.tag)} is not allowed in {self.what}")
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    self.problem(key_node, "mapping keys must be plain scalars")
                    continue
                key = key_node.value  # the text written: "01" stays "01", `on` stays "on"
                key_path: KeyPath = (*path, key)
                if key in out:
                    first = self.doc.lines[key_path]
                    self.problem(
                        key_node,
                        f"duplicate key {ascii(key)} in {where(path)} (first at line {first})",
                    )
                    continue
                self.doc.lines[key_path] = key_node.start_mark.line + 1
                out[key] = self.convert(value_node, key_path)
            return out
        if isinstance(node, SequenceNode):
            return [self.convert(n, (*path, i)) for i, n in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        self.doc.written[path] = node.value
        return self.scalar(node)

    def scalar(self, node: ScalarNode) -> Any:
        if node.tag not in SCALAR_TAGS:
            if node.tag.startswith("tag:yaml.org,2002:") and node.tag.split(":")[-1] in (
                "timestamp",
                "binary",
            ):
                # Implicit timestamps (`2024-01-01`) are dates; explicit !!binary, bytes.
                pass
            else:
                self.problem(node, f"YAML tag {_short_tag(node.tag)} is not allowed in {self.what}")
                return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, TypeError, OverflowError, yaml.YAMLError) as exc:
            shown = node.value if len(node.value) <= 60 else node.value[:57] + "..."
            kind = _short_tag(node.tag).lstrip("!")
            self.problem(node, f"{shown!r} is not a valid {kind} ({_reason(exc)})")
            return node.value


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!", 1)


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def needs_quotes(text: str) -> bool:
    """Whether a plain `text` would be read back as something other than this string."""
    if not text or text != text.strip():
        return True
    resolver = yaml.SafeLoader("")
    tag = resolver.resolve(ScalarNode, text, (True, False))
    return bool(tag != "tag:yaml.org,2002:str")


def round_trip(*, as_written: bool = True) -> Any:
    """A ruamel.yaml round-trip YAML; with `as_written`, plain scalars load as the strings
    written.

    The edit commands read with `as_written` and find models, versions and keys by the
    text in the file, so a model named `on`, `null` or `017` is that model (ruamel's own
    typing would make it True, None or 15). They write without it, so values an edit sets
    are typed (or quoted) as `read` will type them.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.nodes import ScalarNode as RtScalarNode
    from ruamel.yaml.resolver import VersionedResolver

    class _AsWritten(VersionedResolver):
        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is RtScalarNode and implicit[0]:
                return self.DEFAULT_SCALAR_TAG
            return super().resolve(kind, value, implicit)

    y = YAML(typ="rt")
    if as_written:
        y.Resolver = _AsWritten
    y.preserve_quotes = True
    y.width = 1 << 16  # never re-wrap a long line
    return y
