"""The documentation by reader: a short README that starts with the set-up commands,
pages under docs/ whose relative links all lead somewhere, and tables and lines a
reader can take in (docs/development.md, Documentation)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]

#: The README's first lines: the two set-up commands for a fresh machine, as CI runs them.
SETUP = """\
# dpt_ros

```bash
python3 -m venv .venv && .venv/bin/pip install -e ".[venv,test]" && .venv/bin/dpt-ros demo
.venv/bin/python -m pytest -q test
```
"""
MAX_README_LINES = 250
MAX_CELL_WORDS = 30
MAX_LINE = 200

_FENCE = re.compile(r"^(```|~~~)")
_CODE_SPAN = re.compile(r"`+[^`]*?`+", re.S)
_LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> list[str]:
    """The lines of ``text`` outside fenced code blocks (those inside become empty)."""
    out, fenced = [], False
    for line in text.split("\n"):
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else line)
    return out


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: links reduced to their text, lower case,
    punctuation dropped (``_`` and ``-`` kept), spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page``, repeated headings numbered as GitHub does."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose(page.read_text(encoding="utf-8")):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(page: Path) -> list[str]:
    """The targets of the Markdown links of ``page``, outside code."""
    text = _CODE_SPAN.sub("", "\n".join(_prose(page.read_text(encoding="utf-8"))))
    return _LINK.findall(text)


def test_slug_follows_github():
    assert slug("Too far: `+Inf` and clearing") == "too-far-inf-and-clearing"
    assert slug("Coming from ika's Depth Anything 3 TensorRT node") == (
        "coming-from-ikas-depth-anything-3-tensorrt-node"
    )
    assert slug("With depth_image_proc and depthimage_to_laserscan") == (
        "with-depth_image_proc-and-depthimage_to_laserscan"
    )
    assert slug("`dpt-ros doctor nav2`") == "dpt-ros-doctor-nav2"


def test_readme_is_short_and_starts_with_the_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert text.startswith(SETUP), "the README must open with the two set-up commands"
    lines = text.count("\n")
    assert lines < MAX_README_LINES, f"README.md has {lines} lines; move detail into docs/"
    # CI runs the second command as it stands in the README.
    assert SETUP.splitlines()[-2] in (REPO / ".ci" / "run").read_text(encoding="utf-8")


def test_every_page_of_docs_is_reached_from_the_readme():
    reached, todo = set(), [README.resolve()]
    while todo:
        page = todo.pop()
        if page in reached or page.suffix != ".md" or not page.exists():
            continue
        reached.add(page)
        todo += [(page.parent / t.split("#")[0]).resolve() for t in links(page) if ":" not in t]
    lost = [str(p.relative_to(REPO)) for p in PAGES if p.resolve() not in reached]
    assert not lost, f"no link leads from README.md to {lost}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_lead_to_a_file_and_heading(page):
    bad = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_table_cells_and_lines_stay_readable(page):
    bad = []
    for number, line in enumerate(_prose(page.read_text(encoding="utf-8")), 1):
        if line.startswith("|"):
            for cell in line.strip().strip("|").split(" | "):
                if len(cell.split()) > MAX_CELL_WORDS:
                    bad.append(f"line {number}: a cell of {len(cell.split())} words")
        elif len(line) > MAX_LINE:
            bad.append(f"line {number}: {len(line)} characters")
    assert not bad, f"{page.name}: " + "; ".join(bad)


def test_the_checks_find_what_they_look_for(tmp_path):
    """A broken link, a missing heading, a long cell and a long line are each found."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](#title) [gone](missing.md) [no heading](#nothing)\n"
        "`[in code](missing.md)`\n\n| a |\n|---|\n| " + "word " * 31 + "|\n\n" + "x" * 201 + "\n",
        encoding="utf-8",
    )
    assert links(page) == ["#title", "missing.md", "#nothing"]
    assert anchors(page) == {"title"}
    with pytest.raises(AssertionError, match="no file"):
        test_relative_links_lead_to_a_file_and_heading(page)
    page.write_text("# Title\n\n[no heading](#nothing)\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="no heading #nothing"):
        test_relative_links_lead_to_a_file_and_heading(page)
    page.write_text("| " + "word " * 31 + "|\n\n" + "x" * 201 + "\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="a cell of 31 words.*201 characters"):
        test_table_cells_and_lines_stay_readable(page)
