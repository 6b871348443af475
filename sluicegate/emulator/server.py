"""Run the emulator as a server of its own (granian, one worker)."""

from __future__ import annotations

import os
from pathlib import Path

from granian import Granian
from granian.constants import Interfaces

from sluicegate.emulator.app import FAULTS_FILE_ENV, SEED_ENV
from sluicegate.emulator.faults import load_faults_file

APP_FACTORY = "sluicegate.emulator.app:create_app_from_env"


def serve(host: str, port: int, faults_file: str | None = None, *, seed: int = 0) -> None:
    """Blocks until the server is stopped. A bad faults file fails here, before binding."""
    if faults_file is not None:
        load_faults_file(faults_file)
        # The worker builds its app from the import string, so settings travel by env.
        os.environ[FAULTS_FILE_ENV] = str(Path(faults_file).resolve())
    else:
        os.environ.pop(FAULTS_FILE_ENV, None)
    os.environ[SEED_ENV] = str(seed)
    Granian(
        APP_FACTORY, address=host, port=port, interface=Interfaces.ASGI, workers=1, factory=True
    ).serve()
