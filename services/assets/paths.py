"""ltree group paths: validation before anything reaches SQL, and ancestry in pure Python.

PostgreSQL 15's ltree accepts labels of letters, digits and underscores, shorter than 256
characters (hyphens only from PostgreSQL 16, so they are refused here to keep one rule for
every server we support). Labels are restricted to ASCII: what counts as a letter otherwise
depends on the database locale. Ancestry matches ltree's `@>`: a path is an ancestor of
itself, and "" (the root) is an ancestor of every path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from services.assets.errors import InvalidArgument
from services.assets.model import GroupPath

LABEL = re.compile(r"[A-Za-z0-9_]{1,255}")
MAX_LEVELS = 64
ROOT = GroupPath("")


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def parse_path(text: str, field: str = "path", *, allow_root: bool = False) -> GroupPath:
    """`text` as a GroupPath, or InvalidArgument naming the offending label."""
    if text == "":
        if allow_root:
            return ROOT
        raise InvalidArgument(field, "a group path needs at least one label")
    labels = text.split(".")
    if len(labels) > MAX_LEVELS:
        raise InvalidArgument(field, f"{len(labels)} labels, at most {MAX_LEVELS}")
    for label in labels:
        if not LABEL.fullmatch(label):
            raise InvalidArgument(
                field, f"invalid ltree label {_shown(label)} in {_shown(text)}: a label is 1-255 characters "
                       "of A-Z, a-z, 0-9 and _")
    return GroupPath(text)


def parse_label(text: str, field: str) -> str:
    if not LABEL.fullmatch(text):
        raise InvalidArgument(field, f"invalid ltree label {_shown(text)}: 1-255 characters of A-Z, a-z, 0-9 and _")
    return text


def labels(path: GroupPath) -> tuple[str, ...]:
    return tuple(path.split(".")) if path else ()


def is_within(path: GroupPath, ancestor: GroupPath) -> bool:
    """`ancestor @> path` in ltree terms (a path is within itself; everything is within "")."""
    outer = labels(ancestor)
    return labels(path)[: len(outer)] == outer


def is_within_any(path: GroupPath, ancestors: Iterable[GroupPath]) -> bool:
    return any(is_within(path, a) for a in ancestors)


def lineage(path: GroupPath) -> list[GroupPath]:
    """The path's ancestors from the top down, ending with the path itself."""
    parts = labels(path)
    return [GroupPath(".".join(parts[: i + 1])) for i in range(len(parts))]


def join(path: GroupPath, label: str) -> GroupPath:
    return GroupPath(f"{path}.{label}" if path else label)
