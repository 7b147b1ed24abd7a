"""``spinect`` command line: a thin layer over the library.

Each subcommand lives in its own module of this package and exposes
``register(subparsers) -> None``, which adds its parser and sets ``handler=run`` where
``run(args) -> int`` is the exit code. Errors a user can act on (:class:`SpinectError`) are
printed as one line on stderr with exit code 2; a cancelled run exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from spinect_core import __version__
from spinect_core.errors import Cancelled, SpinectError

#: Subcommand modules in the order ``spinect --help`` lists them.
COMMANDS = ("info", "segment", "evaluate", "phantom", "train", "window", "plan", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spinect",
        description="SPINECT planner: CT segmentation of bone and lumbosacral nerves and L5/S1 "
        "transforaminal injection planning. Coordinates are LPS millimetres.",
    )
    parser.add_argument("--version", action="version", version=f"spinect {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"spinect_core.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spinect`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args) or 0)
    except Cancelled:
        print("spinect: cancelled", file=sys.stderr)
        return 130
    except SpinectError as exc:
        print(f"spinect: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
