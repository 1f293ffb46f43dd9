"""Edit state files in place: a stage or alias change, with comments and formatting kept.

The edit is made on a ruamel.yaml round-trip tree, then only the lines it changed
are spliced back into the original text: ruamel re-spells some lines it did not
need to touch (`drift:   correct` -> `drift: correct`, `[ a ]` -> `[a]`), and a pull
request should show the one or two lines that matter. The result is validated with
the loader before anything is written, and written atomically.

Never imports mlflow: the training pipeline and `regops transition` share this code.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from regops.core.live import LiveState
from regops.core.state import STAGES, VERSION_KEY, Policy, shown, version_key
from regops.errors import EditError, FileReadError, FileWriteError
from regops.files import fileio, yamlio
from regops.files.loader import (
    MAX_FILE_BYTES,
    display_path,
    load_state,
    name_problem,
    read_state_texts,
)

NEW_FILE_TEXT = "apiVersion: regops/v1\nmodels: {}\n"
SCHEMA_HINT = "# yaml-language-server:"


@dataclass(frozen=True)
class EditResult:
    """A validated edit of one state file, not yet written (see `write_edit`)."""

    path: Path
    before: str  # "" when the file is new
    after: str
    summary: tuple[str, ...]  # what changed, in words
    created: bool = False

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def changed_lines(self) -> list[tuple[str, int, str]]:
        """(`-` or `+`, line number in the old or new file, line text) for each changed line."""
        out: list[tuple[str, int, str]] = []
        old, new = _lines(self.before), _lines(self.after)
        for tag, i1, i2, j1, j2 in _opcodes(old, new):
            if tag == "equal":
                continue
            out.extend(("-", i + 1, old[i].rstrip("\r\n")) for i in range(i1, i2))
            out.extend(("+", j + 1, new[j].rstrip("\r\n")) for j in range(j1, j2))
        return out


def prepare_edit(
    state_dir: Path,
    model: str,
    version: str,
    *,
    stage: str | None = None,
    alias: str | None = None,
    remove_alias: str | None = None,
    new_model_file: str | None = None,
    stages_supported: bool = True,
) -> EditResult:
    """Compute and validate an edit without writing it."""
    version = str(version).strip()
    _check_request(version, stage, alias, remove_alias)
    if not state_dir.is_dir():
        raise EditError(f"state directory {state_dir} not found")
    # The files as they are must be valid: their policies (max_versions) are read from the
    # loader's typed result, the one reading of those rules.
    current = load_state(state_dir, stages_supported=stages_supported)
    docs = _load_all(state_dir, stages_supported=stages_supported)
    path = next((p for p, doc in docs.items() if _has_model(doc.data, model)), None)
    created = False
    if path is None:
        path = _file_for_new_model(state_dir, model, new_model_file, list(docs))
        if path not in docs:
            docs[path] = _Doc(_new_file_text(docs), created=True)
            created = True
    doc = docs[path]
    policy = current.policies.get(display_path(path), Policy())
    summary = _apply(
        doc, model, version, policy, stage=stage, alias=alias, remove_alias=remove_alias
    )
    if created:
        summary.insert(0, f"created {display_path(path)}")
    after = doc.render()
    # Refuse anything the loader would refuse: raises StateError, nothing written.
    load_state(state_dir, stages_supported=stages_supported, overrides={path: after})
    return EditResult(
        path=path,
        before="" if created else doc.original,
        after=after,
        summary=tuple(summary),
        created=created,
    )


def write_edit(result: EditResult) -> Path:
    """Write an edit atomically (temp file + rename); a no-op edit writes nothing."""
    if not result.changed:
        return result.path
    path = result.path
    exists = os.path.lexists(path)
    if exists != (not result.created) or (exists and _current(path) != result.before):
        raise EditError(f"{display_path(path)} changed while being edited; run the edit again")
    try:
        fileio.write_atomic(path, result.after)
    except FileWriteError as exc:
        raise EditError(str(exc)) from exc
    return path


def _current(path: Path) -> str | None:
    """The file's text now (through the same guards as any read); None if it is refused."""
    try:
        raw = fileio.read_guarded(
            path, root=fileio.repository_root(path.parent), max_bytes=MAX_FILE_BYTES
        )
    except FileReadError:
        return None
    return raw.decode("utf-8", "replace")


def latest_version(live: LiveState, model: str) -> str:
    """The highest registered version number of `model` in a live snapshot."""
    live_model = live.models.get(model)
    if live_model is None or not live_model.versions:
        raise EditError(f"model {model} has no registered versions in the registry")
    return max(live_model.versions, key=version_key)


# ---- request checks and file choice ---------------------------------------------------


def _check_request(
    version: str, stage: str | None, alias: str | None, remove_alias: str | None
) -> None:
    if stage is None and alias is None and remove_alias is None:
        raise EditError("nothing to edit: give a stage, an alias or an alias to remove")
    if not VERSION_KEY.fullmatch(version):
        raise EditError(f"version {version!r} is not a version number (e.g. 7)")
    if stage is not None and stage not in STAGES:
        raise EditError(f"{stage!r} is not a stage (one of: {', '.join(STAGES)})")
    if alias is not None and alias == remove_alias:
        raise EditError(f"alias {alias!r} cannot be both set and removed")


def _file_for_new_model(
    state_dir: Path, model: str, new_model_file: str | None, existing: list[Path]
) -> Path:
    if new_model_file:
        given = Path(new_model_file)
        # A bare name, or a path into the state directory: the loader only reads files there.
        if given.parent != Path() and given.parent.resolve() != state_dir.resolve():
            raise EditError(f"{new_model_file} is not in the state directory {state_dir}")
        if given.suffix not in (".yaml", ".yml"):
            raise EditError(f"{shown(new_model_file)}: a state file name must end in .yaml or .yml")
        if why := name_problem(given.name):
            raise EditError(f"{shown(new_model_file)}: {why}")
        return state_dir / given.name
    if len(existing) == 1:
        return existing[0]
    where = "no state files" if not existing else f"{len(existing)} state files"
    raise EditError(
        f"model {model} is in no state file and {state_dir} has {where}: "
        "say which file should declare it (new_model_file)"
    )


def _new_file_text(docs: dict[Path, _Doc]) -> str:
    """A new state file, with the editor schema hint the other files carry."""
    for doc in docs.values():
        first = doc.original.split("\n", 1)[0]
        if first.startswith(SCHEMA_HINT):
            return first + "\n" + NEW_FILE_TEXT
    return NEW_FILE_TEXT


def _has_model(data: Any, model: str) -> bool:
    models = data.get("models") if isinstance(data, dict) else None
    return isinstance(models, dict) and model in models


# ---- the round-trip document -------------------------------------------------------------


class _Doc:
    """One state file: its original text and a ruamel round-trip tree to edit."""

    def __init__(self, text: str, *, created: bool = False) -> None:
        self.original = text
        self.created = created
        self.crlf = "\r\n" in text
        self.text = text.replace("\r\n", "\n")
        if self.text and not self.text.endswith("\n"):
            self.text += "\n"  # so a line appended at the end starts on a line of its own
        # Read with keys and values as the text written (a model named `017` is "017"),
        # written back with YAML's usual typing (a bool an edit sets is written `false`).
        self.yaml = yamlio.round_trip(as_written=False)
        self.data, seq_indent, seq_offset = load_yaml_guess_indent(
            self.text, yaml=yamlio.round_trip()
        )
        map_indent = _guess_map_indent(self.text)
        self.yaml.indent(
            mapping=map_indent, sequence=seq_indent or map_indent, offset=seq_offset or 0
        )
        # What ruamel makes of the untouched file: the reference the edit is diffed against.
        self.baseline = self._dump()

    def _dump(self) -> str:
        buf = StringIO()
        self.yaml.dump(self.data, buf)
        return buf.getvalue()

    def render(self) -> str:
        edited = self._dump()
        if edited == self.baseline:
            return self.original  # nothing changed: not even the final newline
        merged = _splice(self.text, self.baseline, edited)
        if merged is None or _plain(_yaml().load(merged)) != _plain(self.data):
            merged = edited  # the untouched lines could not be kept: correct beats minimal
        return merged.replace("\n", "\r\n") if self.crlf else merged


def _yaml() -> YAML:
    yaml: YAML = yamlio.round_trip()
    return yaml


def _load_all(state_dir: Path, *, stages_supported: bool) -> dict[Path, _Doc]:
    """Every state file as a round-trip document. Each text comes through the loader's
    guards and its YAML reader first (StateError, FILE:LINE, for a symlink out of the
    repository, a FIFO, a bad name, an oversize file, an alias bomb, deep nesting), so
    ruamel only ever parses what `regops validate` would parse."""
    docs: dict[Path, _Doc] = {}
    for path, text in read_state_texts(state_dir).items():
        try:
            docs[path] = _Doc(text)
        except YAMLError as exc:
            # The loader says where, with the same FILE:LINE format as `regops validate`.
            load_state(state_dir, stages_supported=stages_supported)
            raise EditError(f"{display_path(path)}: cannot be parsed: {exc}") from exc
    return docs


def _guess_map_indent(text: str) -> int:
    """Indent of a nested mapping: the first key line under a `key:` line."""
    parent: int | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if parent is not None and indent > parent and not stripped.startswith("-"):
            return indent - parent
        parent = indent if stripped.split("#", 1)[0].rstrip().endswith(":") else None
    return 2


# ---- the edit itself ------------------------------------------------------------------------


def _apply(
    doc: _Doc,
    model: str,
    version: str,
    policy: Policy,
    *,
    stage: str | None,
    alias: str | None,
    remove_alias: str | None,
) -> list[str]:
    data = doc.data
    if not isinstance(data, CommentedMap):
        raise EditError("a state file must be a mapping with apiVersion and models")
    summary: list[str] = []
    models = data.get("models")
    if not isinstance(models, CommentedMap):
        raise EditError("the state file's `models` is not a mapping")
    if model not in models:
        models.fa.set_block_style()  # `models: {}` grows into a block
        entry = CommentedMap()
        entry["versions"] = CommentedMap()
        _append(models, model, entry)
        summary.append(f"added model {model}")
    versions = models[model].get("versions") if isinstance(models[model], dict) else None
    if not isinstance(versions, CommentedMap):
        raise EditError(f"model {model}: `versions` is not a mapping")
    key = _version_key(versions, version)
    added = key is None
    if key is None:
        key = _add_version(versions, version)
    spec = versions[key]
    if not isinstance(spec, CommentedMap):
        raise EditError(f"model {model} version {version}: expected a mapping like {{stage: S}}")
    if added:
        summary.append(f"{model} v{version}: added to the state")
    if stage is not None:
        summary += _set_stage(versions, key, stage, model, policy.for_stage(stage).max_versions)
    if remove_alias is not None:
        if policy.for_alias(remove_alias).protected and remove_alias in (spec.get("aliases") or []):
            raise EditError(
                f"alias {remove_alias!r} is protected (policy.aliases.{remove_alias}): it may "
                "move to another version but never be removed; move it with "
                f"`regops alias --model-name {model} --version N --alias {remove_alias}`"
            )
        summary += _remove_alias(spec, remove_alias, model, version)
    if alias is not None:
        summary += _set_alias(versions, key, alias, model)
    return summary


def _version_key(versions: CommentedMap, version: str) -> Any:
    return next((k for k in versions if str(k) == version), None)


def _add_version(versions: CommentedMap, version: str) -> Any:
    """Insert `"N": {}` keeping versions in numeric order, quoted like its neighbour."""
    existing = list(versions)
    position = next(
        (i for i, k in enumerate(existing) if version_key(str(k)) > int(version)), len(existing)
    )
    neighbour = existing[max(position - 1, 0)] if existing else None
    key: Any
    if neighbour is not None and type(neighbour) is str:
        key = int(version)  # written plain like its neighbour (and read back as its text)
    elif isinstance(neighbour, SingleQuotedScalarString):
        key = SingleQuotedScalarString(version)
    else:
        key = DoubleQuotedScalarString(version)
    if not existing:
        versions.fa.set_block_style()  # `versions: {}` grows into a block
    spec = CommentedMap()
    spec.fa.set_flow_style()
    if position == len(existing):
        _append(versions, key, spec)
    else:
        versions.insert(position, key, spec)
    return key


def _append(mapping: CommentedMap, key: Any, value: Any) -> None:
    """Add a last key; comment lines that trailed the old last entry move below the new one.

    ruamel attaches a comment that precedes the next block (`# the next model`) to the
    last node before it; appending without this would put the new entry under it.
    """
    token = _trailing_comment(mapping)
    mapping[key] = value
    if token is None:
        return
    head, newline, rest = token.value.partition("\n")
    if rest:
        token.value = head + newline
        moved = CommentToken("\n" + rest, token.start_mark, None)
        mapping.ca.items[key] = [None, None, moved, None]


def _trailing_comment(node: Any) -> CommentToken | None:
    if isinstance(node, CommentedMap) and node:
        last = list(node)[-1]
        slot = node.ca.items.get(last)
        if slot and len(slot) > 2 and isinstance(slot[2], CommentToken):
            return slot[2]
        return _trailing_comment(node[last])
    if isinstance(node, CommentedSeq) and node:
        slot = node.ca.items.get(len(node) - 1)
        if slot and isinstance(slot[0], CommentToken):
            return slot[0]
        return _trailing_comment(node[-1])
    return None


def _set_stage(
    versions: CommentedMap, key: Any, stage: str, model: str, limit: int | None
) -> list[str]:
    spec = versions[key]
    before = spec.get("stage")
    if before == stage:
        return []
    if "stage" in spec:
        spec["stage"] = stage
    else:
        spec.insert(0, "stage", stage)
    was = f"stage {before}" if before is not None else "no stage"
    summary = [f"{model} v{key}: {was} -> {stage}"]
    # A stage with room for N versions: the oldest holders make way, so that
    # `promote` is the one edit a pull request needs (old Production -> Archived).
    holders = [k for k in versions if k != key and _stage_of(versions[k]) == stage]
    while limit is not None and limit >= 1 and len(holders) + 1 > limit:
        old = min(holders, key=lambda k: version_key(str(k)))
        holders.remove(old)
        versions[old]["stage"] = "Archived"
        summary.append(
            f"{model} v{old}: stage {stage} -> Archived ({stage} holds at most {limit} "
            f"version{'s' if limit != 1 else ''})"
        )
    return summary


def _stage_of(spec: Any) -> Any:
    return spec.get("stage") if isinstance(spec, dict) else None


def _set_alias(versions: CommentedMap, key: Any, alias: str, model: str) -> list[str]:
    summary: list[str] = []
    for other in versions:
        spec = versions[other]
        if other != key and isinstance(spec, dict) and alias in (spec.get("aliases") or []):
            _drop_alias(spec, alias)
            summary.append(f"{model} alias {alias}: moved from v{other} to v{key}")
    spec = versions[key]
    aliases = spec.get("aliases")
    if isinstance(aliases, list) and alias in aliases:
        return summary
    written = DoubleQuotedScalarString(alias) if yamlio.needs_quotes(alias) else alias
    if isinstance(aliases, list):
        aliases.append(written)
    else:
        seq = CommentedSeq([written])
        seq.fa.set_flow_style()
        keys = list(spec)
        # Keep the order of the example: stage, aliases, run_id.
        spec.insert(keys.index("stage") + 1 if "stage" in keys else 0, "aliases", seq)
    if not summary:
        summary.append(f"{model} v{key}: alias {alias} set")
    return summary


def _remove_alias(spec: CommentedMap, alias: str, model: str, version: str) -> list[str]:
    if alias not in (spec.get("aliases") or []):
        return []
    _drop_alias(spec, alias)
    return [f"{model} v{version}: alias {alias} removed"]


def _drop_alias(spec: dict[str, Any], alias: str) -> None:
    aliases = spec["aliases"]
    while alias in aliases:
        aliases.remove(alias)
    if not aliases:
        del spec["aliases"]


# ---- keeping untouched lines byte-for-byte -----------------------------------------------


def _lines(text: str) -> list[str]:
    """Lines with their endings; only "\\n" ends a line (not the other splitlines() breaks)."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def _splice(original: str, baseline: str, edited: str) -> str | None:
    """Apply the baseline -> edited change onto the original text.

    `baseline` is ruamel's rendering of the untouched file, so it differs from the
    original only where ruamel re-spelled a line; such lines still map one to one.
    A changed line that ruamel had re-spelled is merged the same way character by
    character, so `[ champion ]` survives a stage change on its line. Returns None
    when a changed region cannot be mapped back.
    """
    merged = _three_way(_lines(original), _lines(baseline), _lines(edited), refine=True)
    return None if merged is None else "".join(merged)


def _three_way(
    orig: list[str], base: list[str], new: list[str], *, refine: bool = False
) -> list[str] | None:
    to_orig: dict[int, int] = {}
    for tag, i1, i2, j1, j2 in _opcodes(base, orig):
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            to_orig.update({i1 + k: j1 + k for k in range(i2 - i1)})
    hunks: list[tuple[int, int, list[str]]] = []
    for tag, i1, i2, j1, j2 in _opcodes(base, new):
        if tag == "equal":
            continue
        span = _map_span(to_orig, i1, i2, len(base), len(orig))
        if span is None:
            return None
        replacement = new[j1:j2]
        if refine and i2 - i1 == j2 - j1:
            replacement = [
                _refine(orig[span[0] + k], base[i1 + k], new[j1 + k]) for k in range(i2 - i1)
            ]
        hunks.append((span[0], span[1], replacement))
    out = list(orig)
    for start, end, lines in reversed(hunks):
        out[start:end] = lines
    return out


def _refine(orig: str, base: str, new: str) -> str:
    if orig == base:
        return new
    chars = _three_way(list(orig), list(base), list(new))
    return new if chars is None else "".join(chars)


def _map_span(
    to_orig: dict[int, int], i1: int, i2: int, n_base: int, n_orig: int
) -> tuple[int, int] | None:
    if i1 < i2:
        if any(i not in to_orig for i in range(i1, i2)):
            return None
        first, last = to_orig[i1], to_orig[i2 - 1]
        return (first, last + 1) if last - first == i2 - i1 - 1 else None
    # An insertion: after the line before it (so it lands before a trailing `...`
    # that ruamel does not render), else before the line after it.
    if i1 == 0:
        return 0, 0
    if i1 - 1 in to_orig:
        return to_orig[i1 - 1] + 1, to_orig[i1 - 1] + 1
    if i1 < n_base and i1 in to_orig:
        return to_orig[i1], to_orig[i1]
    return (n_orig, n_orig) if i1 == n_base else None


def _opcodes(a: list[str], b: list[str]) -> Sequence[tuple[str, int, int, int, int]]:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()


def _plain(node: Any) -> Any:
    """The data of a round-trip tree without its formatting, for comparing two renderings
    (scalars as the text they are written as: a tree read back has only strings)."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool):
        return "true" if node else "false"
    return "null" if node is None else str(node)
