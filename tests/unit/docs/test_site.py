"""The documentation site, built for real with mkdocs (mkdocs.yml): strictly, and with
references that cover every command of the CLI and every key of the schemas."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import click
import pytest

from regops.cli import cli
from tests.support.paths import ROOT, SCHEMAS

MKDOCS = Path(sys.executable).with_name("mkdocs")


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "-f", str(config), "--site-dir", str(site)],
        capture_output=True, text=True, check=False, timeout=300, env=env,
    )  # fmt: skip


@cache
def built_site(tmp: Path) -> Path:
    site = tmp / "site"
    done = build(ROOT / "mkdocs.yml", site)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_site(tmp_path_factory.mktemp("docs"))


def page_text(site: Path, page: str) -> str:
    return html.unescape((site / page / "index.html").read_text(encoding="utf-8"))


def test_the_site_builds_strictly_and_a_broken_link_fails_it(tmp_path: Path) -> None:
    # A copy of the docs with one link to a page that does not exist.
    for rel in ("mkdocs.yml", "docs", "schemas"):
        src = ROOT / rel
        if src.is_dir():
            shutil.copytree(src, tmp_path / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, tmp_path / rel)
    assert build(tmp_path / "mkdocs.yml", tmp_path / "ok").returncode == 0
    page = tmp_path / "docs" / "recipes" / "rollback.md"
    page.write_text(page.read_text() + "\nSee [the missing page](nowhere.md).\n")
    failed = build(tmp_path / "mkdocs.yml", tmp_path / "broken")
    assert failed.returncode != 0
    assert "nowhere.md" in failed.stdout + failed.stderr
    assert "strict mode" in failed.stdout + failed.stderr


def test_every_command_and_its_options_are_in_the_cli_reference(site: Path) -> None:
    text = page_text(site, "reference/cli")
    ctx = click.Context(cli, info_name="regops")
    names = cli.list_commands(ctx)
    assert len(names) >= 15  # the lazy commands too, not only those loaded at import
    for name in names:
        command = cli.get_command(ctx, name)
        assert command is not None
        assert f'id="regops-{name}"' in text, f"regops {name} is not in the CLI reference"
        section = text.split(f'id="regops-{name}"', 1)[1].split('<h2 id="regops-', 1)[0]
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert opt in section, f"regops {name} {opt} is not in its section"


def schema_entries(node: Any) -> dict[str, str]:
    """Every key a schema declares under `properties`, at any depth (refs or not), with the
    description written beside it ('' when none)."""
    out: dict[str, str] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, child in value.items():
                    text = child.get("description", "") if isinstance(child, dict) else ""
                    out[name] = out.get(name) or text
            for name, text in schema_entries(value).items():
                out[name] = out.get(name) or text
    elif isinstance(node, list):
        for value in node:
            for name, text in schema_entries(value).items():
                out[name] = out.get(name) or text
    return out


@pytest.mark.parametrize(
    ("schema", "page"),
    [("registry-state", "reference/state-file"), ("regops-config", "reference/regops-yaml")],
    ids=["state-file", "regops-yaml"],
)
def test_every_schema_key_is_in_the_generated_reference(site: Path, schema: str, page: str) -> None:
    declared = schema_entries(json.loads((SCHEMAS / f"{schema}.schema.json").read_text()))
    raw = (site / page / "index.html").read_text(encoding="utf-8")
    # The generated table's first column: each row's key path, in code.
    paths = [html.unescape(p) for p in re.findall(r"<tr>\s*<td><code>([^<]+)</code></td>", raw)]
    assert len(paths) >= len(declared), f"no generated key table on {page}"
    segments = {part.removesuffix("[]") for path in paths for part in path.split(".")}
    missing = set(declared) - segments
    assert not missing, f"{sorted(missing)} not in the generated {page} reference"
    # What the schema says of a key is what the reference says: the schema is the source.
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", raw)).split())
    described = {name: words for name, words in declared.items() if words}
    assert len(described) >= len(declared) // 2
    for name, words in described.items():
        said = " ".join(words.replace("`", "").split())
        assert said in text, f"{name}: its schema description is not in {page}"


def test_every_input_and_output_of_the_action_is_documented(site: Path) -> None:
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    text = page_text(site, "ci")
    cells = set(re.findall(r"<td><code>([^<]+)</code></td>", text))
    for kind in ("inputs", "outputs"):
        for name in action[kind]:
            assert name in cells, f"the Action's {kind[:-1]} {name} is not in docs/ci.md"
