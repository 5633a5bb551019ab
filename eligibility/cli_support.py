"""What every `python -m eligibility` command shares: one-line errors and exit code 2."""

from __future__ import annotations

import argparse
import sys

from .textsafe import shorten


class OneLineParser(argparse.ArgumentParser):
    """argparse that exits 2 with a one-line message instead of a usage dump."""

    def error(self, message):  # noqa: D401
        self.exit(2, f"error: {message}\n")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code when parsing ended the command (--help: 0, misuse: 2)."""
    try:
        return parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2


def fail(message: str) -> int:
    """Print `error: message` (one line) to standard error; the exit code 2."""
    print(f"error: {shorten(message, 500)}", file=sys.stderr)
    return 2
