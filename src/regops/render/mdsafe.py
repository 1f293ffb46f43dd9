"""Untrusted text, shown and never obeyed: on a terminal, in markdown, in text tables.

Everything regops prints or posts quotes text it does not control: model names,
descriptions, tags and aliases from a registry, lines and file names from a fork's
state files, error messages from a server. Every renderer passes such text through
one of these functions (render.py re-exports them):

- `safe`: a terminal or log. Control characters (C0 but newline and tab, DEL, C1),
  ANSI escape sequences (they start with ESC, a C0 control), line and paragraph
  separators and bidi overrides are shown as Python escapes (`\\x1b`, `\\u202e`),
  so a value can neither move the cursor, clear the screen, open a hyperlink nor
  reorder what a reviewer reads; `oneline=True` escapes newline and tab too.
- `md`: markdown inline text (a table cell, a list item, a heading). The punctuation
  that starts markup (code, emphasis, link, image, raw HTML, autolink, table pipe,
  strikethrough, entity, math) is backslash-escaped, and so is what would start a block
  at the start of the line (heading, quote, list item); whitespace becomes one line.
  GitHub also links text *after* markdown is rendered (bare URLs, `www.`, emails,
  `@user`, `@org/team`, `#1`, `GH-1`, `owner/repo#1`, commit SHAs), where a backslash
  changes nothing: a WORD JOINER (U+2060, invisible, zero width) is put where those
  patterns need an ASCII character (after `@` and `#`, inside `//`, `www.`, `GH-`,
  after a dot before a letter or digit, after every sixth digit of a hex run), so
  GitHub (cmark-gfm's autolinker, its mention and reference filters) and markdown-it's
  linkify see no link while the reader sees the same characters.
- `md_code`: a code span (no markup, links or mentions inside one) that no backtick
  run in the value can close; `md_fence`: a fenced block that no line can close.
- `width` and `ljust`: display width (East Asian wide and fullwidth characters take
  two columns, combining marks none), so text tables stay aligned on CJK and emoji.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

JOINER = "\u2060"  # WORD JOINER: zero width, no line break, not a letter to any autolinker

# C0 except tab and newline, DEL, C1; line/paragraph separators; the bidi controls
# (embeddings, overrides, isolates, marks) that reorder what a reader sees.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u2028\\u2029{_BIDI}]")
_CONTROL_LINE = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029{_BIDI}]")


def _escape(m: re.Match[str]) -> str:
    return ascii(m.group())[1:-1]


def safe(text: Any, *, oneline: bool = False) -> str:
    """Text for a terminal or a log: control and escape sequences shown as escapes, not
    obeyed (`oneline`: newline and tab too, for one table cell or one line)."""
    return (_CONTROL_LINE if oneline else _CONTROL).sub(_escape, str(text))


# ---- markdown -------------------------------------------------------------------------

# What starts markup inside a line: code, emphasis, links and images, raw HTML and
# autolinks, table cells, strikethrough, entities, math; the backslash itself.
# An `_` between two letters or digits never is (`validation_status` stays as typed).
_INLINE = re.compile(r"([\\`*\[\]<|~&$]|(?<![^\W_])_|_(?![^\W_]))")
# What starts a block at the start of a line (a list item's text is one): a heading,
# a quote, a list item, a setext underline.
_LINE_START = re.compile(r"^([#>+\-=]|[0-9]+(?=[.)]))")
_BREAKS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"([@#])"), rf"\1{JOINER}"),  # @user, @org/team, emails; #1, owner/repo#1
    (re.compile(r"/(?=/)"), f"/{JOINER}"),  # scheme://host, //host
    (re.compile(r"(www)(\.)", re.IGNORECASE), rf"\1{JOINER}\2"),  # www.host
    (re.compile(r"(GH-)(?=[0-9])", re.IGNORECASE), rf"\1{JOINER}"),  # GH-1
    (re.compile(r"\.(?=[^\W_])"), f".{JOINER}"),  # host.tld (fuzzy linkers know TLDs)
    # commit SHAs (7 to 40 hex digits): no run of more than six is left
    (re.compile(r"[0-9A-Fa-f]{7,}"), lambda m: _chunked(m.group(), 6)),
]


def _chunked(run: str, n: int) -> str:
    return JOINER.join(run[i : i + n] for i in range(0, len(run), n))


def _neutral(text: str) -> str:
    for pattern, repl in _BREAKS:
        text = pattern.sub(repl, text)
    return text


def md(text: Any) -> str:
    """Text for a markdown table cell, list item or heading: one line, rendered as the
    characters it holds, with no element (link, image, HTML, emphasis, mention, ref)."""
    one = re.sub(r"\r\n|[\n\t]", " ", str(text)).strip()
    out = _INLINE.sub(r"\\\1", _neutral(safe(one)))
    return _LINE_START.sub(lambda m: _lead(m.group()), out)


def _lead(start: str) -> str:
    # `1.` -> `1\.`; `#` -> `\#`: a backslash before the digit would show.
    return f"{start}\\" if start[0].isdigit() else f"\\{start}"


def _ticks(text: str, least: int) -> str:
    return "`" * max(least, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)


def md_code(text: Any, *, table: bool = True) -> str:
    """Text as a markdown code span that no backtick run inside it closes (`table`: in a
    table row, where `|` must be escaped even inside code)."""
    body = safe(str(text).replace("\r\n", " ").replace("\n", " "))
    if table:
        body = body.replace("|", "\\|")
    if not body:
        return "` `"
    fence = _ticks(body, 1)
    # CommonMark strips one space from each end: pad when the value starts or ends with a
    # backtick (it would join the fence) or has a space at both ends (it would be lost).
    pad = " " if body[0] == "`" or body[-1] == "`" or (body[0] == body[-1] == " ") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def md_fence(text: Any, info: str = "") -> list[str]:
    """`text` as the lines of a fenced code block that no line inside it can close."""
    body = safe(str(text).replace("\r\n", "\n")).rstrip("\n")
    ticks = _ticks(body, 3)
    return [ticks + info, body, ticks]


# ---- display width ----------------------------------------------------------------------


def width(text: str) -> int:
    """Columns `text` takes on a terminal: wide and fullwidth characters 2, combining
    marks and zero-width format characters 0, others 1."""
    n = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        n += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return n


def ljust(text: str, columns: int) -> str:
    """`text` padded with spaces to `columns` display columns."""
    return text + " " * max(0, columns - width(text))
