"""python -m sluicegate.emulator --port N [--host 127.0.0.1] [--faults FILE]"""

from __future__ import annotations

import argparse
import sys

from sluicegate.emulator.faults import FaultTableError
from sluicegate.emulator.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sluicegate.emulator",
        description="Serve the deterministic OpenAI + Anthropic API emulator.",
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--faults", default=None, help="YAML or JSON fault table file")
    parser.add_argument("--seed", type=int, default=0, help="seed for failure_rate draws")
    args = parser.parse_args(argv)
    try:
        serve(args.host, args.port, args.faults, seed=args.seed)
    except (FaultTableError, OSError) as problem:
        print(f"emulator: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
