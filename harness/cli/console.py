"""`gameday console [--home DIR | --target FILE] [--port N] [--reports-dir D]`: the game-day
room's live page (harness/console/) for one stack home, on 127.0.0.1 only. Prints one URL with
an access token (as Jupyter does); without the token nothing is shown and no button works.
Runs until Ctrl-C."""
from __future__ import annotations

import socket
import sys
from pathlib import Path

import uvicorn

from harness.cli.options import add_home_options, home_of
from harness.console.app import Console, create_app, new_token
from harness.core.errors import UsageError
from harness.core.paths import PROJECT_ROOT
from harness.run.abort import is_gameday_home

__all__ = ["register", "cmd_console"]

DEFAULT_PORT = 15480  # beside the default stack's ports (15400-15407), below 32768


def register(sub) -> None:
    p = sub.add_parser("console", help="the live page for the game-day room: runs, game days, evidence, abort")
    add_home_options(p)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                   help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument("--reports-dir", default=None, metavar="D",
                   help="where game days and runs are (default: reports/ in the project); the folders of "
                        "runs in progress on the home are added by themselves")
    p.set_defaults(func=cmd_console)


def cmd_console(args) -> int:
    home = home_of(args)
    if not is_gameday_home(home):
        raise UsageError(f"{home} is not a gameday stack home (no target.json, marker or runs/): "
                         f"bring a stack up there or name one with --home")
    if not 0 <= args.port < 32768:
        raise UsageError(f"--port must be 0 to 32767 (32768 and above are the kernel's outgoing ports), got {args.port}")
    reports = Path(args.reports_dir or PROJECT_ROOT / "reports").resolve()
    if not reports.is_dir():
        raise UsageError(f"--reports-dir {reports}: no such folder")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", args.port))
    except OSError as e:
        raise UsageError(f"port {args.port} on 127.0.0.1 cannot be used ({e.strerror}): choose another with --port") from None
    sock.listen(128)  # listening before the URL is printed: a browser opened at once is queued, not refused
    console = Console(home=home, reports_dir=reports, token=new_token(), port=sock.getsockname()[1])
    print(f"gameday console for {home} (reports: {reports})", flush=True)
    print(f"open: {console.url()}", flush=True)
    print("Ctrl-C stops the console (runs go on).", flush=True)
    config = uvicorn.Config(create_app(console), log_level="warning", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=1)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    print("console stopped", file=sys.stderr)
    return 0
