"""Where `sluicegate ledger export` writes its chunks: one file in the end, FILE.part
until then, and a chunk that failed half-way dropped before it is fetched again.

- CSV: chunks are appended to FILE.part, each after the first without its header row
  (which must be the first's: columns that changed mid-export stop it).
- Parquet: each chunk is a file of its own; a single chunk becomes FILE as it is, several
  are joined row group by row group (pyarrow, the `parquet` extra).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from sluicegate.cli.admin_client import fail

MAX_HEADER_BYTES = 1 << 20


class ChunkSink(Protocol):
    written_bytes: int  # written in all, this chunk included
    rows_in_chunk: int  # rows seen in this chunk so far (an estimate, for the progress)

    def start_chunk(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def discard_chunk(self) -> None: ...

    def end_chunk(self, complete: bool) -> None: ...

    def finish(self) -> None: ...

    def keep_partial(self) -> str:
        """Keep what whole chunks wrote, for a resume; says where it is."""
        ...

    def abandon(self) -> None:
        """Remove what was written, unless `keep_partial` kept it."""
        ...


def _part(target: Path, suffix: str) -> Path:
    return target.with_name(target.name + suffix)


class CsvChunks:
    def __init__(self, target: Path) -> None:
        self._target = target
        self._part = _part(target, ".part")
        self._file: IO[bytes] | None = None
        self._header: bytes | None = None  # the first chunk's header row
        self._head: bytes | None = None  # this chunk's header row, while it arrives
        self._offset = 0
        self._kept = False
        self.written_bytes = 0
        self.rows_in_chunk = 0

    def start_chunk(self) -> None:
        if self._file is None:
            self._file = self._part.open("wb")
        self._offset = self._file.tell()
        self._head = b""
        self.rows_in_chunk = 0

    def write(self, data: bytes) -> None:
        assert self._file is not None
        if self._head is not None:
            self._head += data
            end = self._head.find(b"\r\n")
            if end < 0:
                if len(self._head) > MAX_HEADER_BYTES:
                    fail("the gateway's answer does not start with a CSV header row", code=2)
                return
            header, data = self._head[: end + 2], self._head[end + 2 :]
            self._head = None
            if self._header is None:
                self._header = header
                self._file.write(header)
                self.written_bytes += len(header)
            elif header != self._header:
                fail("the export's columns changed between chunks (gateway upgraded?)", code=1)
        self._file.write(data)
        self.written_bytes += len(data)
        self.rows_in_chunk += data.count(b"\n")

    def discard_chunk(self) -> None:
        assert self._file is not None
        self.written_bytes -= self._file.tell() - self._offset
        self._file.truncate(self._offset)
        self._file.seek(self._offset)

    def end_chunk(self, complete: bool) -> None:
        pass

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._part.replace(self._target)

    def keep_partial(self) -> str:
        if self._file is not None:
            self._file.close()
        self._kept = True
        return f"the rows before this chunk are in {self._part}"

    def abandon(self) -> None:
        if self._file is not None:
            self._file.close()
        if not self._kept:
            self._part.unlink(missing_ok=True)


class ParquetChunks:
    def __init__(self, target: Path) -> None:
        self._target = target
        self._part = _part(target, ".part")
        self._index = 0
        self._chunk: Path | None = None
        self._file: IO[bytes] | None = None
        self._single: Path | None = None
        self._joiner: Any = None
        self._written = 0
        self._kept = False
        self.written_bytes = 0
        self.rows_in_chunk = 0

    def start_chunk(self) -> None:
        self._chunk = _part(self._target, f".chunk{self._index}")
        self._file = self._chunk.open("wb")
        self._written = 0

    def write(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._written += len(data)
        self.written_bytes += len(data)

    def discard_chunk(self) -> None:
        self._close_chunk()
        self.written_bytes -= self._written
        if self._chunk is not None:
            self._chunk.unlink(missing_ok=True)

    def end_chunk(self, complete: bool) -> None:
        self._close_chunk()
        assert self._chunk is not None
        if self._index == 0 and complete:
            self._single = self._chunk  # the whole export in one file already
        else:
            self._joined().append(self._chunk)
            self._chunk.unlink()
        self._index += 1

    def finish(self) -> None:
        if self._single is not None:
            self._single.replace(self._target)
            return
        if self._joiner is not None:
            self._joiner.close()
            self._part.replace(self._target)

    def keep_partial(self) -> str:
        self._close_chunk()
        if self._joiner is None:
            return "nothing was kept"
        self._joiner.close()
        self._kept = True
        return f"the rows before this chunk are in {self._part}"

    def abandon(self) -> None:
        self._close_chunk()
        for index in range(self._index + 1):
            _part(self._target, f".chunk{index}").unlink(missing_ok=True)
        if not self._kept:
            if self._joiner is not None:
                with contextlib.suppress(Exception):  # only its file is wanted gone
                    self._joiner.close()
            self._part.unlink(missing_ok=True)

    def _close_chunk(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _joined(self) -> Any:
        if self._joiner is None:
            try:
                merge = importlib.import_module("sluicegate.export.parquet_merge")
            except ImportError:
                self.discard_chunk()
                fail(
                    "this export comes in more than one chunk, and joining Parquet chunks "
                    "needs pyarrow here: pip install 'sluicegate[parquet]' (or raise "
                    "--chunk-rows, or use --format csv)",
                    code=1,
                )
            self._joiner = merge.ParquetJoiner(self._part)
        return self._joiner


# How the chunks of each format become one file (a format the CLI cannot join is refused).
SINKS: dict[str, Callable[[Path], ChunkSink]] = {"csv": CsvChunks, "parquet": ParquetChunks}
