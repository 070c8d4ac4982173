"""Record every bus message into SQLite, losing nothing on Ctrl-C or SIGTERM.

    python -m consumers.recorder AAPL BTC.CRYPTO --db ticks.sqlite
    python -m consumers.recorder --all --db ticks.sqlite      # whatever others subscribed

One row per message: the fields people query on as columns, and the payload's msgpack bytes exactly
as published (`payload`), so fields not in a column are never lost. Rows are committed in batches
(WAL mode) because a commit per tick would cap the rate at the disk's fsync speed.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from collections.abc import Sequence
from typing import Any

from consumers import cli
from consumers.client import Message

PROG = "recorder"

# Columns taken straight from payload keys of the same name (docs/bus.md); others live in `payload`.
FIELDS = (
    "topic",
    "seq",
    "instrument",
    "kind",
    "event",
    "recv_ns",
    "tws_time",
    "tick",
    "price",
    "size",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "mid",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "value",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    seq INTEGER,
    instrument TEXT,
    kind TEXT,
    event TEXT,
    recv_ns INTEGER,
    tws_time INTEGER,
    tick TEXT,
    price REAL,
    size REAL,
    bid REAL,
    ask REAL,
    bid_size REAL,
    ask_size REAL,
    mid REAL,
    open REAL,
    high REAL,
    low REAL,
    close REAL,
    volume REAL,
    value,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_instrument_time ON messages (instrument, recv_ns);
"""

INSERT = f"INSERT INTO messages ({', '.join(FIELDS)}, payload) VALUES ({', '.join('?' * (len(FIELDS) + 1))})"


def row(msg: Message) -> tuple[Any, ...]:
    """A message as a table row; `value` is str for tick_string and float for tick_generic."""
    topic, payload = msg
    return (topic, *(payload.get(f) for f in FIELDS[1:]), msg.raw)


class Recorder:
    """Buffers rows and commits every `batch_rows` rows or `batch_seconds`, whichever comes first."""

    def __init__(self, path: str, batch_rows: int = 200, batch_seconds: float = 0.5) -> None:
        self.db = sqlite3.connect(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.buffer: list[tuple[Any, ...]] = []
        self.first_at = 0.0
        self.written = 0

    def add(self, msg: Message) -> None:
        if not self.buffer:
            self.first_at = time.monotonic()
        self.buffer.append(row(msg))
        if len(self.buffer) >= self.batch_rows:
            self.commit()

    @property
    def rows(self) -> int:
        """Rows taken so far, committed or still buffered."""
        return self.written + len(self.buffer)

    def wait(self) -> float | None:
        """Seconds until the open batch is due, None if nothing is buffered."""
        if not self.buffer:
            return None
        return max(0.0, self.first_at + self.batch_seconds - time.monotonic())

    def commit(self) -> None:
        if not self.buffer:
            return
        with self.db:
            self.db.executemany(INSERT, self.buffer)
        self.written += len(self.buffer)
        self.buffer.clear()

    def close(self) -> None:
        self.commit()
        self.db.close()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m consumers.recorder",
        description="Record bus messages into SQLite (table `messages`).",
    )
    p.add_argument("instruments", nargs="*", metavar="INSTRUMENT", help="subscribe these (short form)")
    p.add_argument("--all", action="store_true", help="record every topic already published, subscribe nothing")
    p.add_argument("--db", default="ticks.sqlite", help="SQLite file (default %(default)s)")
    p.add_argument("--batch-rows", type=cli.positive_int, default=200, help="commit after this many rows (%(default)s)")
    p.add_argument(
        "--batch-seconds", type=cli.positive_float, default=0.5, help="or after this many seconds (%(default)s)"
    )
    cli.add_subscription_arguments(p)
    cli.add_stop_arguments(p, "messages")
    cli.add_bus_arguments(p)
    args = p.parse_args(argv)
    if not args.instruments and not args.all:
        p.error("name instruments to subscribe, or --all")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = cli.Deadline(args.seconds)
    try:
        rec = Recorder(args.db, args.batch_rows, args.batch_seconds)
    except sqlite3.Error as exc:  # a directory we cannot write, a file that is not SQLite, a locked database
        why = f"{exc} (--db names a SQLite file to create or add to)"
        raise SystemExit(f"{PROG}: cannot record into {args.db}: {why}") from None
    lost = 0
    try:
        with cli.client_from_args(args) as bus:
            bus.listen("" if args.all else "state")  # state too: a disconnect explains a hole in the data
            subs = cli.subscribe_each(bus, args, PROG) if args.instruments else []
            print(f"recording {', '.join(s.topic for s in subs) or 'everything'} to {args.db}", flush=True)
            while not bus.stopped and not deadline.passed() and (args.count is None or rec.rows < args.count):
                waits = [w for w in (rec.wait(), deadline.remaining()) if w is not None]
                msg = bus.recv(min(waits) if waits else None)
                if msg is not None:
                    lost += msg.lost
                    rec.add(msg)
                if rec.wait() == 0.0:
                    rec.commit()
            if bus.stopped:
                for msg in bus.pending():  # already delivered to us: keep them too
                    lost += msg.lost
                    rec.add(msg)
    finally:
        rec.close()
        print(f"{PROG}: {rec.written} rows written to {args.db} ({lost} messages lost in gaps)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(PROG, main))
