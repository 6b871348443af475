"""The durable spool's directory: one spool file per process, found again after a restart.

A process claims slot N of the directory by holding an exclusive `flock` on
`ledger-N.lock` for as long as it runs, and spools to `ledger-N.jsonl` (a `FileSpool`,
with its `.replay`, `.replay.offset` and `.rejected` siblings). Workers of one `serve
--workers` and replicas that share a directory therefore never write the same file, and a
restarted process finds its records in the slot it claims again. Records in a slot that no
running process holds (there were more workers before than now) are moved into the
claiming process's spool at start and replayed with its own. The lock dies with its
process, so a crash never leaves a slot held.

Where the directory is, unless `serve --spool-dir` says: beside a SQLite database file
(`PATH-spool/`), else `./sluicegate-spool/HOST-PORT-DATABASE/` (one per database, so that
gateways started from one directory for two databases never replay into the wrong one).
An in-memory SQLite ledger gets an in-memory spool: nothing of that ledger outlives the
process anyway.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from pathlib import Path

from sluicegate.db.engine import async_url, is_memory_sqlite
from sluicegate.errors import ConfigError
from sluicegate.ledger.spool import FileSpool, MemorySpool, Spool, SpoolFull

log = logging.getLogger(__name__)

MAX_SLOTS = 64  # processes sharing one directory
SERVER_SPOOL_DIR = "sluicegate-spool"
_ADOPT_BATCH = 1000
_UNSAFE = re.compile(r"[^\w.-]+")


def default_spool_dir(database_url: str) -> str | None:
    """The directory a gateway on `database_url` spools to when none is given; None for
    an in-memory SQLite database."""
    url = async_url(database_url)
    if is_memory_sqlite(url):
        return None
    if url.get_backend_name() == "sqlite" and url.database:
        return str(Path(url.database).resolve()) + "-spool"
    name = _UNSAFE.sub("_", f"{url.host or 'local'}-{url.port or 'default'}-{url.database}")
    return str((Path(SERVER_SPOOL_DIR) / name).resolve())


def open_spool(directory: str | None, *, max_bytes: int, memory_capacity: int) -> Spool:
    """This process's spool: a claimed slot of `directory`, or in memory when None."""
    if directory is None:
        return MemorySpool(memory_capacity)
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    slot, lock = _claim(root)
    spool = FileSpool(_slot_path(root, slot), max_bytes=max_bytes)
    spool.on_close.append(lambda: os.close(lock))
    _adopt_orphans(root, slot, spool)
    if spool.count:
        log.warning("ledger spool %s holds %d records: replaying them", spool.path, spool.count)
    return spool


def _slot_path(root: Path, slot: int) -> Path:
    return root / f"ledger-{slot}.jsonl"


def _lock(root: Path, slot: int) -> int | None:
    """The locked descriptor of the slot's lock file; None while another process holds it."""
    fd = os.open(root / f"ledger-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _claim(root: Path) -> tuple[int, int]:
    for slot in range(MAX_SLOTS):
        fd = _lock(root, slot)
        if fd is not None:
            return slot, fd
    raise ConfigError(
        f"spool directory {root}: all {MAX_SLOTS} slots are held by running processes",
        param="spool_dir",
    )


def _has_records(path: Path) -> bool:
    return any(
        p.exists() and p.stat().st_size > 0 for p in (path, path.with_name(path.name + ".replay"))
    )


def _adopt_orphans(root: Path, own: int, spool: FileSpool) -> None:
    for slot in range(MAX_SLOTS):
        path = _slot_path(root, slot)
        if slot == own or not _has_records(path):
            continue
        fd = _lock(root, slot)
        if fd is None:
            continue  # a running process owns it and replays it
        try:
            _move(FileSpool(path, max_bytes=spool.max_bytes), spool)
        finally:
            os.close(fd)


def _move(orphan: FileSpool, spool: FileSpool) -> None:
    moved = 0
    while batch := orphan.peek(_ADOPT_BATCH):
        try:
            spool.append(batch)
        except SpoolFull:  # the rest stay where they are (those kept are stored once)
            log.error(
                "ledger spool %s is full: %d records wait in %s",
                spool.path,
                orphan.count,
                orphan.path,
            )
            break
        orphan.commit()
        moved += len(batch)
    if moved:
        log.warning("ledger spool: took over %d records from %s", moved, orphan.path)
