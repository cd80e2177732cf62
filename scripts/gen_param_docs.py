#!/usr/bin/env python3
"""Writes ``config/dpt.yaml`` and the README's parameter table from
``dpt_ros.node.params.PARAMS``, the one place parameters are declared.

    python scripts/gen_param_docs.py          # rewrite both files
    python scripts/gen_param_docs.py --check  # exit 1 if either is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dpt_ros.node.params import PARAMS  # noqa: E402

YAML_HEADER = """\
# dpt_node parameters with their defaults. Units and meaning: README.md (Parameters).
# '/**' applies to the node under any name or namespace.
/**:
  ros__parameters:
"""
TABLE_START = "| parameter | default | read-only | meaning |\n|---|---|---|---|\n"
WIDTH = 92


def _yaml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def _table_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, tuple):
        return "[]"
    if isinstance(v, str):
        return v if v else '""'
    return repr(v)


def _comment(text: str) -> str:
    return (
        "\n".join(
            textwrap.wrap(text, width=WIDTH, initial_indent="    # ", subsequent_indent="    # ")
        )
        + "\n"
    )


def yaml_text() -> str:
    out = [YAML_HEADER]
    for p in PARAMS:
        text = p.description + ("" if p.read_only else " (settable at run time)")
        out.append(_comment(text))
        if isinstance(p.default, tuple):  # a list: an empty one cannot be written
            out.append(
                _comment('Unset here: rcl reads an empty list in a params file as "not set".')
            )
            out.append(f"    # {p.name}: {p.example}\n")
        else:
            out.append(f"    {p.name}: {_yaml_value(p.default)}\n")
    return "".join(out)


def table_text() -> str:
    rows = [
        f"| `{p.name}` | `{_table_value(p.default)}` | {'yes' if p.read_only else 'no'} "
        f"| {p.description} |\n"
        for p in PARAMS
    ]
    return TABLE_START + "".join(rows)


def readme_text(readme: str) -> str:
    start = readme.index(TABLE_START)
    end = readme.index("\n\n", start) + 1
    return readme[:start] + table_text() + readme[end:]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    files = {REPO / "config" / "dpt.yaml": lambda old: yaml_text(), REPO / "README.md": readme_text}
    stale = []
    for path, make in files.items():
        old = path.read_text()
        new = make(old)
        if new != old:
            stale.append(path.relative_to(REPO))
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(
            "out of date (run scripts/gen_param_docs.py): " + ", ".join(map(str, stale)),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
