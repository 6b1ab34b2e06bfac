"""`gameday target up | down | status [--json]`: the target's lifecycle. `up` brings up the
embedded reference stack, or with `--kind containers` the container target; `down` and `status`
act on whatever the home (or --target's description) holds."""
from __future__ import annotations

import json
import sys

from harness import targets
from harness.cli.options import add_home_options, target_of
from harness.core.errors import UsageError
from harness.run.heal import heal

KINDS = ("local", "containers")  # the kinds gameday brings up itself


def register(sub) -> None:
    target = sub.add_parser("target", help="bring the target up or down, or say how it is")
    tsub = target.add_subparsers(dest="target_command", metavar="ACTION", required=True)
    p = tsub.add_parser("up", help="start the stack (idempotent) and write its target description")
    add_home_options(p, port_base=True, target=False)
    p.add_argument("--kind", choices=KINDS, default=None,
                   help="local: the embedded stack (default for a new home); containers: Docker containers "
                        "(testcontainers)")
    p.add_argument("--db-tier", choices=("plain", "patroni"), default=None,
                   help="the embedded stack's database tier, for a new home: patroni (default: Patroni on a "
                        "3-member etcd quorum fails over by itself) or plain (the BCP's failover runbook "
                        "promotes the standby); a home keeps the tier it was set up with")
    p.set_defaults(func=cmd_up)
    p = tsub.add_parser("down", help="stop everything the stack started")
    add_home_options(p, port_base=True, target=False)
    p.set_defaults(func=cmd_down)
    p = tsub.add_parser("status", help="health of every component; exit 1 if any is unhealthy")
    add_home_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_status)


def _heal(t: targets.Target) -> None:
    """What a harness that died left behind is undone first, one line each."""
    if t.runs_here:
        for line in heal(t.home):
            print(line, file=sys.stderr)


def cmd_up(args) -> int:
    t = target_of(args, kind=args.kind)
    if args.kind is None and t.kind not in KINDS:
        raise UsageError(f"{t.home} holds {t.label}, which gameday does not bring up")
    base = t.parse_port_base(args.port_base)
    if args.db_tier is not None:
        if args.db_tier not in t.db_tiers:
            raise UsageError(f"--db-tier is for the embedded stack, not {t.label}")
        t.db_tier = args.db_tier
    _heal(t)
    try:
        t.up(base)
    except targets.TargetUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_down(args) -> int:
    t = target_of(args)
    try:
        t.down(t.parse_port_base(args.port_base))
    except targets.TargetUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_status(args) -> int:
    t = target_of(args)
    if t.owns_lifecycle and not t.home.is_dir():
        raise UsageError(f"{t.home}: no such stack home (bring one up with 'gameday target up --home {t.home}')")
    _heal(t)
    st = t.status()
    if args.json:
        print(json.dumps(st, indent=2))
    else:
        if st.get("error"):
            print(f"error: {' '.join(str(st['error']).split())}", file=sys.stderr)
        for c in st["components"]:
            mark = "ok  " if c["healthy"] else "DOWN"
            print(f"{mark} {c['name']:<17} pid {str(c['pid'] or '-'):>7}  {c['detail']}")
        if st["api_url"]:
            print(f"API: {st['api_url']}")
    return 0 if st["healthy"] else 1
