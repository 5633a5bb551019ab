"""Dispatch for the amendment commands: `readings`, `relax`, `diff-protocol`."""

from __future__ import annotations


def main(cmd: str, argv: list[str]) -> int:
    if cmd == "readings":
        from .readings_cli import main as readings_main

        return readings_main(argv)
    if cmd == "relax":
        from .relax_cli import main as relax_main

        return relax_main(argv)
    from .versions_cli import main as versions_main

    return versions_main(argv)
