"""One guarded reader for every JSON regops reads but did not write itself.

A saved plan (`reconcile --plan`), a snapshot (`plan --live`), a candidates file
(`propose --candidates`), a training manifest (`candidates --manifest`) and the JSON
tags regops keeps in the registry (`regops.audit`, `regops.applied`,
`regops.copied_from`) can all come from someone else: a fork's pull request, another
client of a shared registry. Whatever they hold, reading them ends in a value or in a
RegopsError naming the input (exit 1), never in a traceback. Checked here, before any
schema sees the value:

- size: each kind of file has a cap (below), checked on the file's stat and again
  by reading at most cap + 1 bytes (a FIFO or device is refused before it is opened);
  a tag is capped in characters;
- encoding: UTF-8 (a BOM is allowed), no lone surrogate escapes (`"\\ud800"`);
- nesting: at most `max_depth` levels of `[`/`{`, counted by a linear pre-scan of the
  text outside strings, so 100,000 `[` are refused at once instead of exhausting the
  parser's recursion;
- numbers: integers of at most 20 digits (Python refuses to convert more than 4,300,
  and no regops value needs more than 19), finite floats of at most 64 characters;
  `NaN`/`Infinity` refused;
- objects: a duplicate key is refused (JSON would keep the last one silently);
- the top level: an object or an array, as the caller expects.

Schema checks (shape, types of fields) stay with each caller, after this. Parsing only:
files are read (size-capped, regular files only) by regops.files.jsonfile.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from regops.errors import JsonInputError, RegopsError

KiB = 1024
MiB = 1024 * KiB
# The documented size caps, per kind of input (docs/security.md repeats them).
SNAPSHOT_MAX_BYTES = 64 * MiB
PLAN_MAX_BYTES = 32 * MiB
MANIFEST_MAX_BYTES = 4 * MiB
CANDIDATES_MAX_BYTES = 1 * MiB
TAG_MAX_CHARS = 100_000  # the most MLflow (3.x) stores in a tag value; 2.x: 5,000

MAX_DEPTH = 32  # a snapshot nests 6 levels, a plan 5
TAG_MAX_DEPTH = 8  # a stamp nests 2, the applied record 2
MAX_INT_DIGITS = 20
MAX_FLOAT_CHARS = 64

_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# A string, closed or not (an unclosed one runs to the end: the parser refuses it later).
# Every character is consumed once: linear on any input. (No possessive quantifiers: they
# are Python 3.11+, and the core runs on 3.10; these patterns are unambiguous, each
# character can be matched one way only, so they never backtrack.)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_JSON_TYPE = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


class _Refused(ValueError):
    """Raised from the parser's hooks: the reason the text is refused."""


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB and n % MiB == 0 else f"{n:,} bytes"


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number JSON allows")


def _int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"a number with {digits:,} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_FLOAT_CHARS:
        raise _Refused(f"a number {len(text):,} characters long (at most {MAX_FLOAT_CHARS})")
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text} is out of range")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key[:60]!r}")
        out[key] = value
    return out


def depth(text: str) -> int:
    """The deepest nesting of `[`/`{` in `text`, brackets inside strings not counted."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _lone_surrogate(value: Any) -> str | None:
    """A string (key or value) in `value` holding a lone surrogate, if any."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return item
    return None


def _parse(text: str, max_depth: int) -> Any:
    """The value in `text`, or _Refused saying why not."""
    # Fewer openers than the limit cannot nest deeper than it: most inputs skip the scan.
    if text.count("[") + text.count("{") > max_depth and (deepest := depth(text)) > max_depth:
        raise _Refused(f"nested {deepest:,} levels deep (at most {max_depth})")
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_int,
            parse_float=_float,
            object_pairs_hook=_unique,
        )
    except _Refused:
        raise
    except json.JSONDecodeError as exc:
        raise _Refused(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # the pre-scan should have caught these
        raise _Refused(f"not JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(text):
        bad = _lone_surrogate(value)
        if bad is not None:
            raise _Refused(f"a string holds a lone surrogate escape ({bad[:40]!r})")
    return value


def _top(value: Any, top: type[dict[Any, Any]] | type[list[Any]]) -> str | None:
    if isinstance(value, top):
        return None
    return f"a JSON {_JSON_TYPE.get(type(value), 'value')}, not an {_JSON_TYPE[top]}"


def _decode(text: str | bytes, max_depth: int, top: type[dict[Any, Any]] | type[list[Any]]) -> Any:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(
                f"not UTF-8: byte 0x{text[exc.start]:02x} at offset {exc.start}"
            ) from None
    value = _parse(text.removeprefix("\ufeff"), max_depth)
    wrong = _top(value, top)
    if wrong is not None:
        raise _Refused(wrong)
    return value


def loads(
    text: str | bytes,
    *,
    source: str,
    top: type[dict[Any, Any]] | type[list[Any]],
    refusal: str = "refused",
    max_depth: int = MAX_DEPTH,
    error: type[RegopsError] = JsonInputError,
) -> Any:
    """Parse `text` under the guards above; `error("SOURCE: REFUSAL (why)")` if refused."""
    try:
        return _decode(text, max_depth, top)
    except _Refused as exc:
        raise error(f"{source}: {refusal} ({exc})") from None


def parse_tag(raw: str, *, max_chars: int = TAG_MAX_CHARS, max_depth: int = TAG_MAX_DEPTH) -> Any:
    """The JSON value of a registry tag; JsonInputError(why) when it is not one regops reads.

    The caller names the model, version and tag, and treats the tag as absent.
    """
    if len(raw) > max_chars:
        raise JsonInputError(f"{len(raw):,} characters long (at most {max_chars:,})")
    try:
        return _parse(raw, max_depth)
    except _Refused as exc:
        raise JsonInputError(str(exc)) from None
