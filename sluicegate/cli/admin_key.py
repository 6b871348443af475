"""Where `serve` gets its admin key.

    SLUICEGATE_ADMIN_KEY        wins; a secret someone else keeps, so it is never printed
    --admin-key-file PATH       read when it exists; else a new key is written there (0600)
                                and kept across restarts (`make demo` uses one, so the key
                                a developer exported keeps working)
    neither                     a new key for this run, printed once at start

A key file readable by anyone but its owner is refused, as ssh refuses such a private key.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sluicegate.errors import ConfigError

ENV = "SLUICEGATE_ADMIN_KEY"
MIN_LENGTH = 16  # shorter is guessable; a generated key has 32 characters
Origin = Literal["environment", "file", "new file", "generated"]


@dataclass(frozen=True)
class AdminKey:
    value: str
    origin: Origin
    path: Path | None = None


def admin_key(environ: dict[str, str], key_file: Path | None) -> AdminKey:
    if value := environ.get(ENV, ""):
        return AdminKey(value, "environment")
    if key_file is None:
        return AdminKey(_new_key(), "generated")
    try:
        return AdminKey(_read(key_file), "file", key_file)
    except FileNotFoundError:
        pass
    value = _new_key()
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another serve wrote it first: use theirs
        return AdminKey(_read(key_file), "file", key_file)
    except OSError as exc:
        raise ConfigError(f"cannot write the admin key file {key_file}: {exc}") from exc
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return AdminKey(value, "new file", key_file)


def _new_key() -> str:
    return secrets.token_urlsafe(24)


def _read(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"the admin key file {path} is open to other users (mode {stat.filemode(mode)}): "
            f"chmod 600 {path}"
        )
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the admin key file {path}: {exc}") from exc
    if len(value) < MIN_LENGTH or any(c.isspace() for c in value):
        raise ConfigError(
            f"the admin key file {path} must hold one key of at least {MIN_LENGTH} "
            "characters: delete it to have a new one written"
        )
    return value
