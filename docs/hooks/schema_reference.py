"""mkdocs hook: the state-file and regops.yaml references, generated from the JSON schemas.

A page holds a marker line `<!-- regops:schema NAME -->`; at build time it becomes the
table of every key `schemas/NAME.schema.json` allows: its path, its values and its
description. The schemas are the one source (editors and `regops validate` read them
too), so the reference cannot drift from what is accepted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MARKER = re.compile(r"^<!-- regops:schema ([a-z-]+) -->$", re.M)
# What a map's keys stand for, by the map's own key (models.<model>.versions.<version>).
PLACEHOLDER = {
    "models": "<model>",
    "versions": "<version>",
    "aliases": "<alias>",
    "stages": "<stage>",
    "environments": "<env>",
    "require_tags": "<tag>",
    "require_metrics": "<metric>",
}


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """The node with its local `$ref` merged in (the node's own keys win)."""
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    merged = dict(_resolve(schema, target))
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _values(node: dict[str, Any]) -> str:
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return " | ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type", "")
    if kind == "array":
        return "list"
    if kind == "object":
        return "map"
    extra = []
    if "minimum" in node:
        extra.append(f"≥ {node['minimum']}")
    if "maxLength" in node:
        extra.append(f"≤ {node['maxLength']} chars")
    return " ".join([str(kind), *extra]).strip()


def _cell(text: str, code: bool = False) -> str:
    """One table cell: pipes escaped, and outside code no `<` that HTML would swallow."""
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if code else text.replace("<", "&lt;")


def rows(schema: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(key path, values, required, description) for every key the schema allows."""
    out: list[tuple[str, str, str, str]] = []

    def walk(node: dict[str, Any], path: str, depth: int) -> None:
        node = _resolve(schema, node)
        if depth > 12:
            return
        required = set(node.get("required", ()))
        for key, child in node.get("properties", {}).items():
            child = _resolve(schema, child)
            here = f"{path}.{key}" if path else key
            needed = "yes" if key in required else ""
            out.append((here, _values(child), needed, child.get("description", "")))
            walk(child, here, depth + 1)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):  # a map: its keys are names (models.<model>)
            name = PLACEHOLDER.get(path.rsplit(".", 1)[-1], "<key>")
            here = f"{path}.{name}" if path else name
            child = _resolve(schema, extra)
            keys = _resolve(schema, node.get("propertyNames", {}))
            said = (keys.get("description", ""), child.get("description", ""))
            out.append((here, _values(child), "", " ".join(t for t in said if t)))
            walk(child, here, depth + 1)
        items = node.get("items")
        if isinstance(items, dict):
            child = _resolve(schema, items)
            if "properties" in child:
                walk(child, f"{path}[]", depth + 1)

    walk(schema, "", 0)
    return out


def table(schema: dict[str, Any]) -> str:
    lines = [
        f"{schema.get('description', '')}",
        "",
        "| key | values | required | meaning |",
        "|---|---|---|---|",
    ]
    for key, values, required, text in rows(schema):
        key, values = _cell(key, code=True), _cell(values, code=True)
        lines.append(f"| `{key}` | {values} | {required} | {_cell(text)} |")
    return "\n".join(lines) + "\n"


def render(markdown: str, schemas: Path) -> str:
    def one(match: re.Match[str]) -> str:
        path = schemas / f"{match.group(1)}.schema.json"
        return table(json.loads(path.read_text(encoding="utf-8")))

    return MARKER.sub(one, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    root = Path(config["config_file_path"]).parent
    return render(markdown, root / "schemas")
