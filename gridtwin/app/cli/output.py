"""How listings print: `--output table` (people), `json` (a list of objects) or `csv` (a header
and one row per item) on stdout. Messages about the listing go to stderr, so json and csv stay
parseable. A table never cuts a value: long ids fold on a terminal, and when stdout is not a
terminal (a pipe, a file) the table is as wide as its content."""

from __future__ import annotations

import csv
import datetime as dt
import enum
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


OutputOption = Annotated[Format, typer.Option("--output", "-o", help="table, json or csv", case_sensitive=False)]


def stdout() -> Console:
    if sys.stdout.isatty():
        return Console()
    return Console(width=100_000, soft_wrap=True)   # a pipe: nothing cut, nothing wrapped


def note(message: str) -> None:
    """A line for people (stderr): never mixed into json or csv."""
    Console(stderr=True, width=100_000 if not sys.stderr.isatty() else None).print(message, highlight=False)


def when(unix_ms: int | None) -> str:
    """UTC ISO time of a timestamp in ms; "" for none (0)."""
    if not unix_ms:
        return ""
    return dt.datetime.fromtimestamp(unix_ms / 1_000, dt.UTC).isoformat(timespec="seconds")


def emit(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: Format, *, title: str = "",
         right: Iterable[str] = (), empty: str = "") -> None:
    """Prints `rows` (dicts with at least `columns`) as a table, JSON or CSV. `empty`: said (on
    stderr) instead of an empty table."""
    if fmt is Format.json:
        print(json.dumps([dict(row) for row in rows], indent=2, default=str))
        return
    if fmt is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    if not rows and empty:
        note(empty)
        return
    aligned_right = set(right)
    table = Table(title=title or None, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in aligned_right else "left", overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    stdout().print(table)


def emit_one(record: Mapping[str, Any], fmt: Format, *, title: str = "") -> None:
    """One object: a two-column table, a JSON object, or a one-row CSV."""
    if fmt is Format.json:
        print(json.dumps(dict(record), indent=2, default=str))
    elif fmt is Format.csv:
        emit([record], list(record), fmt)
    else:
        table = Table(title=title or None, title_justify="left", show_header=False)
        table.add_column("field")
        table.add_column("value", overflow="fold")
        for key, value in record.items():
            table.add_row(key, "" if value is None else (json.dumps(value) if isinstance(value, (list, dict))
                                                        else str(value)))
        stdout().print(table)
