"""The agent's disk buffer: samples, sequence numbers, acknowledgements and its small state, in one
SQLite database in WAL mode.

Guarantees (each operation is one transaction; `synchronous = FULL` by default, so a committed
one survives a power cut, not only a killed process):

- a sample is kept from `add` until a batch holding it is acknowledged (`ack`);
- `take_batch` gives the oldest unsent samples the next sequence number, in the same transaction
  that moves the counter on: sequence numbers strictly increase for the life of the file, across
  reconnects and restarts, and a batch keeps its number until it is acknowledged — after a
  restart `unacked()` lists the batches to replay, in order, with their original numbers;
- `requeue` puts a refused batch's samples back among the unsent ones (they leave again under a
  new number), `drop` forgets them (the cloud will never take them);
- at most `max_samples` samples are kept: beyond that the oldest unsent ones are dropped first
  (and counted), never a batch in flight;
- the acknowledgement sent for each command id (the last `REMEMBERED_ACKS`), the control state and
  frames waiting for a connection (`outbox`) are kept beside the samples.

Samples are stored as serialized `Sample` messages (bytes; this module does not parse them), keyed
by their timestamp: a second sample with the same timestamp is ignored.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

REMEMBERED_ACKS = 1_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (ts INTEGER PRIMARY KEY, seq INTEGER, payload BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS samples_seq ON samples (seq) WHERE seq IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB);
CREATE TABLE IF NOT EXISTS acks (command_id TEXT PRIMARY KEY, ack BLOB NOT NULL, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, frame BLOB NOT NULL);
"""


class DiskBuffer:
    """Not thread-safe; one process at a time (the agent takes an exclusive lock on the file)."""

    def __init__(self, path: Path, *, max_samples: int = 14 * 86_400, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists()
        self.path = path
        self.max_samples = max_samples
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if fresh:
            os.chmod(path, 0o600)   # it holds the device's credential
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute(f"PRAGMA synchronous = {synchronous}")
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.executescript(_SCHEMA)
        self.dropped = 0
        self._pending = self._scalar("SELECT count(*) FROM samples WHERE seq IS NULL")
        self._unacked = self._scalar("SELECT count(*) FROM samples WHERE seq IS NOT NULL")

    def close(self) -> None:
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._db.close()

    # ------------------------------------------------------------ samples

    @property
    def pending(self) -> int:
        """Samples not in any batch yet."""
        return self._pending

    @property
    def unacked_samples(self) -> int:
        """Samples in batches sent or to send again, not yet acknowledged."""
        return self._unacked

    def add(self, timestamp_ms: int, payload: bytes) -> None:
        with self._transaction():
            added = self._db.execute("INSERT OR IGNORE INTO samples (ts, payload) VALUES (?, ?)",
                                     (timestamp_ms, payload)).rowcount
            self._pending += added
            excess = self._pending + self._unacked - self.max_samples
            if excess > 0:
                gone = self._db.execute(
                    "DELETE FROM samples WHERE ts IN (SELECT ts FROM samples WHERE seq IS NULL ORDER BY ts LIMIT ?)",
                    (excess,)).rowcount
                self._pending -= gone
                self.dropped += gone

    def add_many(self, rows: list[tuple[int, bytes]]) -> None:
        """`add` for many samples in one transaction (tests, benchmarks, imports)."""
        with self._transaction():
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO samples (ts, payload) VALUES (?, ?)", rows)
            self._pending += self._db.total_changes - before

    def take_batch(self, max_samples: int, max_bytes: int = 512 * 1024) -> tuple[int, list[bytes]] | None:
        """The oldest unsent samples (at most `max_samples`, and `max_bytes` of payload unless one
        alone is larger) as the batch with the next sequence number; None when none are unsent."""
        with self._transaction():
            rows = self._db.execute("SELECT ts, length(payload) FROM samples WHERE seq IS NULL ORDER BY ts LIMIT ?",
                                    (max_samples,)).fetchall()
            if not rows:
                return None
            size, last = 0, rows[0][0]
            for ts, length in rows:
                if size and size + length > max_bytes:
                    break
                size += length
                last = ts
            sequence = self._next_sequence()
            taken = self._db.execute("UPDATE samples SET seq = ? WHERE seq IS NULL AND ts <= ?",
                                     (sequence, last)).rowcount
            self._put("next_sequence", str(sequence + 1).encode())
            self._pending -= taken
            self._unacked += taken
        return sequence, self.batch(sequence)

    def batch(self, sequence: int) -> list[bytes]:
        return [r[0] for r in self._db.execute("SELECT payload FROM samples WHERE seq = ? ORDER BY ts", (sequence,))]

    def unacked(self) -> list[int]:
        """Sequence numbers of the batches awaiting an acknowledgement, oldest first."""
        return [r[0] for r in self._db.execute("SELECT DISTINCT seq FROM samples WHERE seq IS NOT NULL ORDER BY seq")]

    def ack(self, sequence: int) -> int:
        """The cloud has the batch: its samples are forgotten. Returns how many."""
        with self._transaction():
            gone = self._db.execute("DELETE FROM samples WHERE seq = ?", (sequence,)).rowcount
            self._unacked -= gone
        return gone

    def requeue(self, sequence: int) -> int:
        with self._transaction():
            back = self._db.execute("UPDATE samples SET seq = NULL WHERE seq = ?", (sequence,)).rowcount
            self._unacked -= back
            self._pending += back
        return back

    def drop(self, sequence: int) -> int:
        return self.ack(sequence)

    def _next_sequence(self) -> int:
        stored = self._get("next_sequence")
        return int(stored) if stored is not None else 1

    @property
    def next_sequence(self) -> int:
        return self._next_sequence()

    def advance_sequence(self, above: int) -> None:
        """New batches are numbered above `above` (the gateway's last acknowledged number, after
        a buffer file was lost or replaced): a counter behind it would only be refused."""
        with self._transaction():
            if self._next_sequence() <= above:
                self._put("next_sequence", str(above + 1).encode())

    # ------------------------------------------------------------ small state

    def get(self, key: str) -> bytes | None:
        return self._get(key)

    def put(self, key: str, value: bytes | None) -> None:
        with self._transaction():
            self._put(key, value)

    def remember_ack(self, command_id: str, ack: bytes) -> None:
        with self._transaction():
            n = self._scalar("SELECT coalesce(max(n), 0) + 1 FROM acks")
            self._db.execute("INSERT OR REPLACE INTO acks (command_id, ack, n) VALUES (?, ?, ?)", (command_id, ack, n))
            self._db.execute("DELETE FROM acks WHERE n <= ?", (n - REMEMBERED_ACKS,))

    def known_ack(self, command_id: str) -> bytes | None:
        row = self._db.execute("SELECT ack FROM acks WHERE command_id = ?", (command_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def outbox_add(self, frame: bytes, *, limit: int = 1_000) -> None:
        with self._transaction():
            self._db.execute("INSERT INTO outbox (frame) VALUES (?)", (frame,))
            self._db.execute("DELETE FROM outbox WHERE id <= (SELECT max(id) FROM outbox) - ?", (limit,))

    def outbox(self) -> list[tuple[int, bytes]]:
        return [(r[0], bytes(r[1])) for r in self._db.execute("SELECT id, frame FROM outbox ORDER BY id")]

    def outbox_remove(self, frame_id: int) -> None:
        with self._transaction():
            self._db.execute("DELETE FROM outbox WHERE id = ?", (frame_id,))

    # ------------------------------------------------------------ internals

    def _get(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def _put(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
        else:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _scalar(self, sql: str) -> int:
        return int(self._db.execute(sql).fetchone()[0])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
