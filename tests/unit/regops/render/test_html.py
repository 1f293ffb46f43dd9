"""render/html.py: the history page's data cannot leave its JSON blocks, whatever the text.

In a browser, with real git and a real registry: tests/registry/regops/render/test_history_html.py.
"""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from regops.core.lanes import build_lanes
from regops.core.timeline import Change, Entry, History
from regops.render.html import render_html
from regops.render.mdsafe import safe

T0 = 1_700_000_000


def one_commit(subject: str) -> Entry:
    return Entry(
        commit="a" * 40,
        author="Alice",
        author_email="a@example.com",
        authored_at="2023-11-14T22:30:00Z",
        committed_at="2023-11-14T22:30:00Z",
        subject=subject,
        changes=(Change("M", "stage", "1", None, "Production"),),
    )


def _blocks(html: str) -> list[str]:
    return re.findall(r'<script type="application/json" id="[^"]+">(.*?)</script>', html, re.S)


@settings(max_examples=150, deadline=None)
@given(text=st.text(min_size=1, max_size=80))
def test_no_text_leaves_its_json_block(text: str) -> None:
    h = History(
        "registry-state",
        (one_commit(text),),
        registry=text,
    )
    html = render_html(build_lanes(h, now=T0 + 5000))
    # The page's own scripts only: whatever the text, it cannot open or close a tag.
    assert html.count("<script") == 3
    assert html.count("</script>") == 3
    assert "<!--" not in html
    blocks = _blocks(html)
    assert len(blocks) == 2
    assert not set("<>&") & set(blocks[0] + blocks[1])  # written as \\u003c, \\u003e, \\u0026
    shown = json.loads(blocks[1])["c"][0][3]
    if text.isascii() and text.isprintable():
        assert shown == text  # plain text arrives as it is
    else:
        assert shown == safe(text, oneline=True)  # controls and bidi shown as escapes
