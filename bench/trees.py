"""Another commit of the gateway, run beside the working tree in the same benchmark.

`--baseline REV` in run.py and ab.py measures the gateway as committed at REV side by side
with the working tree, in one run: a refactor's "figures unchanged" is then read from one
table, not from two runs on a host that drifts by tens of percent between them.

The baseline tree is `git archive REV` unpacked into a temporary directory. Its gateway runs
with the same interpreter and installed dependencies, with the tree as its working directory
and first on PYTHONPATH, so `python -m sluicegate.cli.main` imports the baseline's code
(the editable install's finder comes after the path entries). Commits that need other
dependency versions than the installed ones cannot be compared this way.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def export_tree(rev: str) -> Path:
    """Unpack `rev` of this repository into a new temporary directory; return its path."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev],
        check=True,
        capture_output=True,
    ).stdout
    target = Path(tempfile.mkdtemp(prefix="sluice-baseline-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def tree_env(tree: Path | None) -> dict[str, str]:
    """Environment for a gateway process that must import the code in `tree`."""
    return {} if tree is None else {"PYTHONPATH": str(tree)}


def short_rev(rev: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()
