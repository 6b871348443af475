"""Where ledger records wait while the store is down.

A `Spool` is a FIFO the writer appends failed batches to and replays from: `peek` reads
the oldest records without removing them and `commit` removes what the last `peek`
returned, so a replay interrupted by another outage loses nothing (the store's writes are
idempotent, so a batch replayed twice is stored once). Records the store refuses outright
are `set_aside`, never dropped silently.

`FileSpool` survives restarts: JSON lines appended to PATH; a replay first renames PATH to
PATH.replay (new failures keep going to a fresh PATH) and reads it from an offset kept in
PATH.replay.offset; records set aside go to PATH.rejected with the reason. Both are
bounded (`FileSpool` in bytes on disk, `MemorySpool` in records): `append` keeps what fits
and raises `SpoolFull` with the number it could not keep, for the writer to count and log.
`MemorySpool` only serves a ledger that is itself in memory (`sqlite://`), and tests.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from sluicegate.model.record import LedgerRecord


class SpoolFull(Exception):
    """A bounded spool could not take `lost` of the records it was given (it kept the rest)."""

    def __init__(self, message: str, lost: int) -> None:
        super().__init__(message)
        self.lost = lost


class SetAside(msgspec.Struct, kw_only=True):
    reason: str
    record: LedgerRecord | None = None
    line: str | None = None  # a spool line that could not be decoded


class Spool(Protocol):
    @property
    def count(self) -> int: ...

    @property
    def durable(self) -> bool:
        """Whether what it holds survives the process."""
        ...

    def describe(self) -> dict[str, Any]:
        """Where it is and how full, for /readyz."""
        ...

    def append(self, records: Sequence[LedgerRecord]) -> None: ...

    def peek(self, limit: int) -> list[LedgerRecord]: ...

    def commit(self) -> None: ...

    def set_aside(self, records: Sequence[LedgerRecord], reason: str) -> None: ...

    def close(self) -> None: ...


class MemorySpool:
    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._records: deque[LedgerRecord] = deque()
        self._peeked = 0
        self.rejected: list[SetAside] = []

    @property
    def count(self) -> int:
        return len(self._records)

    @property
    def durable(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        return {"durable": False, "records": len(self._records), "max_records": self._capacity}

    def append(self, records: Sequence[LedgerRecord]) -> None:
        room = max(0, self._capacity - len(self._records))
        self._records.extend(records[:room])
        if len(records) > room:
            raise SpoolFull(
                f"in-memory spool holds at most {self._capacity} records",
                lost=len(records) - room,
            )

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

    def close(self) -> None:
        pass


DEFAULT_MAX_BYTES = 1 << 30


class FileSpool:
    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        """`max_bytes` bounds the spool's files together (pending and set aside)."""
        self.path = Path(path)
        self.max_bytes = max_bytes
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
        self._bytes = _size(self.path) + _size(self.rejected_path)
        self._bytes += max(0, _size(self.replay_path) - self._offset)
        self.on_close: list[Callable[[], None]] = []  # run by `close` (releases a lock)

    @property
    def count(self) -> int:
        return self._count

    @property
    def durable(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "durable": True,
            "path": str(self.path),
            "bytes": self._bytes,
            "max_bytes": self.max_bytes,
        }

    def append(self, records: Sequence[LedgerRecord]) -> None:
        if not records:
            return
        lines = self._fitting(self._encoder.encode(r) + b"\n" for r in records)
        if lines:
            with open(self.path, "ab") as f:
                f.write(b"".join(lines))
            self._count += len(lines)
        if len(lines) < len(records):
            raise SpoolFull(f"spool {self.path} is full", lost=len(records) - len(lines))

    def peek(self, limit: int) -> list[LedgerRecord]:
        self._peeked_lines, self._undecodable = 0, []
        if not self.replay_path.exists():
            if not self.path.exists() or self.path.stat().st_size == 0:
                self._count = 0  # both files are gone: nothing can be waiting
                self._bytes = _size(self.rejected_path)
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
                (
                    SetAside(reason="undecodable spool line", line=line.decode(errors="replace"))
                    for line in self._undecodable
                ),
                bounded=False,  # bytes the spool already held: moved, not added
            )
        self._count -= self._peeked_lines
        self._bytes -= max(0, self._peek_end - self._offset)
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

    def close(self) -> None:
        while self.on_close:
            self.on_close.pop()()

    def _fitting(self, lines: Iterable[bytes]) -> list[bytes]:
        """The encoded lines, in order, that fit under `max_bytes`; counted as kept."""
        kept: list[bytes] = []
        for line in lines:
            if self._bytes + len(line) > self.max_bytes:
                break
            self._bytes += len(line)
            kept.append(line)
        return kept

    def _saved_offset(self) -> int:
        if not self.replay_path.exists():
            self.offset_path.unlink(missing_ok=True)
            return 0
        try:
            offset = int(self.offset_path.read_text())
        except (OSError, ValueError):
            return 0  # replaying from the start is safe: the store skips known ids
        return offset if 0 <= offset <= self.replay_path.stat().st_size else 0

    def _write_rejected(self, entries: Iterable[SetAside], *, bounded: bool = True) -> None:
        encoded = [self._encoder.encode(e) + b"\n" for e in entries]
        lines = self._fitting(encoded) if bounded else encoded
        if lines:
            with open(self.rejected_path, "ab") as f:
                f.write(b"".join(lines))
        if len(lines) < len(encoded):
            raise SpoolFull(f"spool {self.path} is full", lost=len(encoded) - len(lines))


def _end_with_newline(path: Path) -> None:
    """A crash mid-append leaves a partial last line; keep it from swallowing the next."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            f.write(b"\n")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _count_lines(path: Path, offset: int = 0) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        f.seek(offset)
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
