"""`gameday`: the command line. Each layer registers its own subcommands (register(sub) in its
cli module) so this file only wires them together and turns bad input into one-line errors."""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute subcommands; each has `register(subparsers)`.
COMMAND_MODULES = (
    "harness.stack.cli",      # target up | down | status
    "harness.runner_cli",     # run
    "harness.recovery.cli",   # backup ..., failover
    "harness.report.cli",     # report ...
)

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


class UsageError(Exception):
    """Bad input from the person at the keyboard: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gameday", description="Disaster-recovery game days for the SVG AI BCP.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that layer is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_ERROR
        return int(args.func(args) or 0)
    except UsageError as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)  # always one line
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    # Run as `python -m harness.cli`: use the importable module's classes, not __main__'s copies.
    from harness.cli import main as _main
    sys.exit(_main())
