"""`gameday target up | down | status [--json]`: the embedded reference stack, or with
`up --kind containers` the container target (down and status tell the kind from the home)."""
from __future__ import annotations

import json
import sys

from harness import target as target_mod
from harness.containers import target as containers
from harness.errors import UsageError
from harness.heal import heal
from harness.stack import embedded
from harness.stack.embedded import StackError
from harness.stack.layout import LayoutError, port_base_from_env

ERRORS = (StackError, LayoutError, containers.ContainersError)  # cannot come up or go down: one line, exit 2
KINDS = ("local", containers.KIND)


def _common(p) -> None:
    p.add_argument("--home", help="stack folder (default $GAMEDAY_HOME or .gameday in the project)")
    p.add_argument("--port-base", help="first of 8 consecutive ports (default $GAMEDAY_PORT_BASE or 15400)")


def register(sub) -> None:
    target = sub.add_parser("target", help="bring the embedded reference stack up or down")
    tsub = target.add_subparsers(dest="target_command", metavar="ACTION", required=True)
    p = tsub.add_parser("up", help="start the stack (idempotent) and write its target description")
    _common(p)
    p.add_argument("--kind", choices=KINDS, default="local",
                   help="local: the embedded stack (default); containers: Docker containers (testcontainers)")
    p.set_defaults(func=cmd_up)
    p = tsub.add_parser("down", help="stop everything the stack started")
    _common(p)
    p.set_defaults(func=cmd_down)
    p = tsub.add_parser("status", help="health of every component; exit 1 if any is unhealthy")
    _common(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_status)


def _port_base(args):
    """--port-base if given (validated), else None: the home's recorded base, env or default."""
    if args.port_base is None:
        return None
    try:
        return port_base_from_env(args.port_base)
    except LayoutError as e:
        raise UsageError(f"--port-base: {e}") from None


def _heal(args) -> None:
    """What a harness that died left behind is undone first, one line each."""
    for line in heal(args.home or target_mod.default_home()):
        print(line, file=sys.stderr)


def cmd_up(args) -> int:
    if args.kind == containers.KIND:
        _heal(args)
        try:
            containers.up(args.home, args.port_base)
        except ERRORS as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    base = _port_base(args)
    _heal(args)
    try:
        embedded.up(args.home, base)
    except ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_down(args) -> int:
    try:
        if containers.is_containers_home(args.home):
            containers.down(args.home)
            return 0
        embedded.down(args.home, _port_base(args))
    except ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_status(args) -> int:
    _heal(args)
    st = containers.status(args.home) if containers.is_containers_home(args.home) else embedded.status(args.home)
    if args.json:
        print(json.dumps(st, indent=2))
    else:
        if st.get("error"):
            print(st["error"])
        for c in st["components"]:
            mark = "ok  " if c["healthy"] else "DOWN"
            print(f"{mark} {c['name']:<17} pid {str(c['pid'] or '-'):>7}  {c['detail']}")
        if st["api_url"]:
            print(f"API: {st['api_url']}")
    return 0 if st["healthy"] else 1
