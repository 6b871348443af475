"""Where ledger records wait while the store is down.

A `Spool` is a FIFO the writer appends failed batches to and replays from: `peek` reads
the oldest records without removing them and `commit` removes what the last `peek`
returned, so a replay interrupted by another outage loses nothing (the store's writes are
idempotent, so a batch replayed twice is stored once). Records the store refuses outright
are `set_aside`, never dropped silently.

`FileSpool` survives restarts: JSON lines appended to PATH; a replay first renames PATH to
PATH.replay (new failures keep going to a fresh PATH) and reads it from an offset kept in
PATH.replay.offset; records set aside go to PATH.rejected with the reason. `MemorySpool`
is the bounded in-process fallback when no spool path is configured, and the fake for
tests.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import msgspec

from sluicegate.model.record import LedgerRecord


class SpoolFull(Exception):
    """A bounded spool cannot take more records."""


class SetAside(msgspec.Struct, kw_only=True):
    reason: str
    record: LedgerRecord | None = None
    line: str | None = None  # a spool line that could not be decoded


class Spool(Protocol):
    @property
    def count(self) -> int: ...

    def append(self, records: Sequence[LedgerRecord]) -> None: ...

    def peek(self, limit: int) -> list[LedgerRecord]: ...

    def commit(self) -> None: ...

    def set_aside(self, records: Sequence[LedgerRecord], reason: str) -> None: ...


class MemorySpool:
    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._records: deque[LedgerRecord] = deque()
        self._peeked = 0
        self.rejected: list[SetAside] = []

    @property
    def count(self) -> int:
        return len(self._records)

    def append(self, records: Sequence[LedgerRecord]) -> None:
        if len(self._records) + len(records) > self._capacity:
            raise SpoolFull(f"in-memory spool holds at most {self._capacity} records")
        self._records.extend(records)

    def peek(self, limit: int) -> list[LedgerRecord]:
        batch = [self._records[i] for i in range(min(limit, len(self._records)))]
        self._peeked = len(batch)
        return batch

    def commit(self) -> None:
        for _ in range(self._peeked):
            self._records.popleft()
        self._peeked = 0

    def set_aside(self, records: Sequence[LedgerRecord], reason: str) -> None:
        self.rejected.extend(SetAside(reason=reason, record=r) for r in records)


class FileSpool:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.replay_path = self.path.with_name(self.path.name + ".replay")
        self.rejected_path = self.path.with_name(self.path.name + ".rejected")
        self.offset_path = self.path.with_name(self.path.name + ".replay.offset")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(LedgerRecord)
        self._offset = self._saved_offset()  # into replay_path: all before it is stored
        self._peek_end = 0
        self._peeked_lines = 0
        self._undecodable: list[bytes] = []
        _end_with_newline(self.path)
        _end_with_newline(self.replay_path)
        self._count = _count_lines(self.path) + _count_lines(self.replay_path, self._offset)

    @property
    def count(self) -> int:
        return self._count

    def append(self, records: Sequence[LedgerRecord]) -> None:
        if not records:
            return
        data = b"".join(self._encoder.encode(r) + b"\n" for r in records)
        with open(self.path, "ab") as f:
            f.write(data)
        self._count += len(records)

    def peek(self, limit: int) -> list[LedgerRecord]:
        self._peeked_lines, self._undecodable = 0, []
        if not self.replay_path.exists():
            if not self.path.exists() or self.path.stat().st_size == 0:
                self._count = 0  # both files are gone: nothing can be waiting
                return []
            os.replace(self.path, self.replay_path)
            self._offset = 0
        records: list[LedgerRecord] = []
        with open(self.replay_path, "rb") as f:
            f.seek(self._offset)
            while len(records) < limit and (line := f.readline()):
                self._peeked_lines += 1
                try:
                    records.append(self._decoder.decode(line))
                except msgspec.DecodeError:
                    self._undecodable.append(line)
            self._peek_end = f.tell()
            at_end = not f.read(1)
        if not records and at_end:  # only undecodable lines were left in this file
            self.commit()
            return self.peek(limit)
        return records

    def commit(self) -> None:
        if self._undecodable:
            self._write_rejected(
                SetAside(reason="undecodable spool line", line=line.decode(errors="replace"))
                for line in self._undecodable
            )
        self._count -= self._peeked_lines
        self._offset = self._peek_end
        self._peeked_lines, self._undecodable = 0, []
        if not self.replay_path.exists():
            return
        if self._offset >= self.replay_path.stat().st_size:
            self.replay_path.unlink()
            self.offset_path.unlink(missing_ok=True)
            self._offset = self._peek_end = 0
        else:
            scratch = self.offset_path.with_name(self.offset_path.name + ".tmp")
            scratch.write_text(str(self._offset))
            os.replace(scratch, self.offset_path)

    def set_aside(self, records: Sequence[LedgerRecord], reason: str) -> None:
        self._write_rejected(SetAside(reason=reason, record=r) for r in records)

    def _saved_offset(self) -> int:
        if not self.replay_path.exists():
            self.offset_path.unlink(missing_ok=True)
            return 0
        try:
            offset = int(self.offset_path.read_text())
        except (OSError, ValueError):
            return 0  # replaying from the start is safe: the store skips known ids
        return offset if 0 <= offset <= self.replay_path.stat().st_size else 0

    def _write_rejected(self, entries: Iterable[SetAside]) -> None:
        data = b"".join(self._encoder.encode(e) + b"\n" for e in entries)
        with open(self.rejected_path, "ab") as f:
            f.write(data)


def _end_with_newline(path: Path) -> None:
    """A crash mid-append leaves a partial last line; keep it from swallowing the next."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            f.write(b"\n")


def _count_lines(path: Path, offset: int = 0) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        f.seek(offset)
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
