"""The alert log of an installation as CSV or JSON (pure: alerts in, text out).

Times are written both as Unix milliseconds and ISO 8601 UTC, so a spreadsheet and a program
read the same file. JSON is one array of objects with the same fields as the CSV columns
(`details` is an object there and a JSON string in the CSV).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from actors.twin.model import Alert

COLUMNS = ("alert_id", "installation_id", "rule", "severity", "state", "first_seen", "last_seen", "cleared_at",
           "first_seen_unix_ms", "last_seen_unix_ms", "cleared_unix_ms", "samples", "details")


def _iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return dt.datetime.fromtimestamp(ms / 1_000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_record(a: Alert) -> dict[str, Any]:
    return {
        "alert_id": a.alert_id, "installation_id": a.installation_id, "rule": a.rule.value,
        "severity": a.severity.name.lower(), "state": a.state.value,
        "first_seen": _iso(a.first_seen_ms), "last_seen": _iso(a.last_seen_ms), "cleared_at": _iso(a.cleared_ms),
        "first_seen_unix_ms": a.first_seen_ms, "last_seen_unix_ms": a.last_seen_ms,
        "cleared_unix_ms": a.cleared_ms, "samples": a.samples, "details": a.details,
    }


def to_csv(alerts: Iterable[Alert]) -> Iterator[str]:
    """The header, then one chunk of text per alert."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for alert in alerts:
        record = alert_record(alert)
        record["details"] = json.dumps(record["details"], sort_keys=True)
        record["cleared_unix_ms"] = "" if record["cleared_unix_ms"] is None else record["cleared_unix_ms"]
        writer.writerow([record[c] for c in COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def to_json(alerts: Iterable[Alert]) -> Iterator[str]:
    """A JSON array, one chunk per alert."""
    first = True
    yield "["
    for alert in alerts:
        yield ("" if first else ",") + "\n" + json.dumps(alert_record(alert), sort_keys=True)
        first = False
    yield "\n]\n"
