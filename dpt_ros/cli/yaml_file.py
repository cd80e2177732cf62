"""A YAML parameters file read within bounds: whatever a file holds, reading it takes
little time and memory, and a file that is no parameters file is one ``ValueError``
naming it.

The bounds (a ROS params file is a few KB; Nav2's own ``nav2_params.yaml`` about 15 KB):

- a regular file (a FIFO, a device or a directory is refused before it is read: opening
  a FIFO to read waits for a writer) of at most :data:`MAX_BYTES`;
- UTF-8 text (a binary file is named as one);
- collections nested at most :data:`MAX_DEPTH` deep, checked on the parser's event
  stream before any tree is built (the composer recurses once per level);
- no alias inside the collection it names (a recursive alias), and at most
  :data:`MAX_NODES` nodes once aliases are expanded (a "billion laughs" file is 1 KB of
  aliases that expand to 10**9 strings: every walk of the loaded tree pays for them).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

#: Largest params file read (bytes).
MAX_BYTES = 1 << 20
#: Deepest nesting of mappings and sequences.
MAX_DEPTH = 64
#: Most nodes in the tree with every alias expanded.
MAX_NODES = 100_000


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The text of a regular UTF-8 file of at most ``max_bytes``.

    Raises:
        ValueError: not a regular file, too large, or not UTF-8 text.
        OSError: the file cannot be opened or read.
    """
    # O_NONBLOCK: opening a FIFO with no writer returns at once (then refused below)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file (a params file is one)")
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ValueError(
            f"{path} is larger than {max_bytes // 1024} KB: not a params file (they are a few KB)"
        )
    nul = data.find(b"\0")
    if nul >= 0:
        raise ValueError(f"{path} is not a text file (a NUL byte at byte {nul})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a text file (no UTF-8 at byte {exc.start})") from None


def _loader() -> Any:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_depth(text: str, path: Path) -> None:
    """Nesting within :data:`MAX_DEPTH`, from the parser's events (no tree built)."""
    depth = 0
    for event in yaml.parse(text, Loader=_loader()):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(
                    f"{path} is nested deeper than {MAX_DEPTH} levels: not a params file"
                )
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_expansion(root: Any, path: Path) -> None:
    """No recursive alias and at most :data:`MAX_NODES` nodes with aliases expanded:
    a walk that counts every visit of a shared node and stops at the bound."""
    count = 0
    # (node, ids of the collections above it): iterative, so no recursion at all
    stack: list[tuple[Any, frozenset[int]]] = [(root, frozenset())]
    while stack:
        node, above = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ValueError(
                f"{path}: its aliases expand to more than {MAX_NODES} values: not a params file"
            )
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        else:
            continue
        if id(node) in above:
            raise ValueError(f"{path} holds a recursive alias (a collection inside itself)")
        inner = above | {id(node)}
        stack.extend((child, inner) for child in children)


def load_yaml(path: Path) -> Any:
    """The YAML document of ``path``, loaded safely within the module's bounds.

    Raises:
        ValueError: out of bounds or invalid YAML, one line naming ``path``.
        OSError: the file cannot be opened or read.
    """
    text = read_text(path)
    try:
        _check_depth(text, path)
        root = yaml.compose(text, Loader=_loader())
        if root is None:
            return None
        _check_expansion(root, path)
        return yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own bound, hit while scanning
            raise ValueError(
                f"{path} is nested deeper than {MAX_DEPTH} levels: not a params file"
            ) from None
        raise ValueError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
