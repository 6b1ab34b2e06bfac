"""`gameday`: the command line. Each sub-command is one module of harness/cli/ with
`register(subparsers)`; this file only wires them together and turns bad input into one-line
errors on stderr (exit 2). The shared grammar (--home, --target, --port-base) is options.py."""
from __future__ import annotations

import argparse
import sys

from harness import __version__
from harness.cli import abort as abort_cli, console as console_cli, findings as findings_cli
from harness.cli import heartbeat as heartbeat_cli, plan as plan_cli, recovery as recovery_cli
from harness.cli import report as report_cli, run as runner_cli, target as target_cli
from harness.core.errors import UsageError
from harness.targets import TargetError

# Modules that contribute subcommands; each has `register(subparsers)`.
COMMAND_MODULES = (
    target_cli,     # target up | down | status
    plan_cli,       # plan create
    runner_cli,     # run
    heartbeat_cli,  # heartbeat start | stop | status
    abort_cli,      # abort: the emergency stop
    recovery_cli,   # backup ..., failover
    report_cli,     # report ...
    console_cli,    # console: the live page for the game-day room
    findings_cli,   # findings list | close
)

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gameday", description="Disaster-recovery game days for the SVG AI BCP.")
    parser.add_argument("--version", action="version", version=f"gameday {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in COMMAND_MODULES:
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
    except (UsageError, TargetError) as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)  # always one line
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
