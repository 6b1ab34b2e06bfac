"""The grammar every sub-command shares: which target it acts on, said the same way everywhere.

    --home DIR        a stack home (default $GAMEDAY_HOME, else .gameday in the project)
    --target FILE     a target description instead (e.g. a Kubernetes deployment's; default
                      $GAMEDAY_TARGET); not with --home
    --port-base N     where the home's stack listens, for the commands that bring it up

    --signing-key KEY       the OpenSSH key evidence is signed with (default $GAMEDAY_SIGNING_KEY,
                            else the home's own, made at first use in <home>/secrets)
    --allowed-signers FILE  who may sign evidence (default $GAMEDAY_ALLOWED_SIGNERS, else
                            <home>/allowed_signers)

target_of(args) turns them into the one Target the command acts on; bad input is a UsageError
(one line, exit 2); a port base is the target's own to validate (Target.parse_port_base)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness import targets
from harness.core import signing
from harness.core.errors import UsageError

__all__ = ["add_home_options", "target_of", "home_of", "add_signing_options", "signing_key_of",
           "allowed_signers_of", "SIGNING_KEY_ENV", "ALLOWED_SIGNERS_ENV"]

SIGNING_KEY_ENV = "GAMEDAY_SIGNING_KEY"
ALLOWED_SIGNERS_ENV = "GAMEDAY_ALLOWED_SIGNERS"


def add_home_options(p: argparse.ArgumentParser, port_base: bool = False, target: bool = True) -> None:
    p.add_argument("--home", metavar="DIR", help="the stack home (default $GAMEDAY_HOME or .gameday in the project)")
    if target:
        p.add_argument("--target", metavar="FILE",
                       help="a target description instead of a home (default $GAMEDAY_TARGET); not with --home")
    if port_base:
        p.add_argument("--port-base", metavar="N",
                       help="first of the stack's consecutive ports (default: the home's own, else "
                            "$GAMEDAY_PORT_BASE or 15400)")


def target_of(args: argparse.Namespace, kind: str | None = None) -> targets.Target:
    """The Target a command acts on: --target's description, else --home's stack home, else
    $GAMEDAY_TARGET's description, else the default home."""
    home, described = getattr(args, "home", None), getattr(args, "target", None)
    if home and described:
        raise UsageError("--home and --target name two targets; give one")
    if described:
        if not Path(described).exists():
            raise UsageError(f"--target {described}: no such file")
        try:
            return targets.load(described)
        except targets.TargetError as e:
            raise UsageError(f"--target: {e}") from None
    if home is not None:
        return targets.at_home(home, kind=kind)
    return targets.at_home(None, kind=kind) if kind else targets.selected(None)


def home_of(args: argparse.Namespace) -> Path:
    """The stack home a command acts on (its own folder, for a target description)."""
    return target_of(args).home


def add_signing_options(p: argparse.ArgumentParser, key: bool = True, allowed: bool = False) -> None:
    if key:
        p.add_argument("--signing-key", metavar="KEY",
                       help="OpenSSH private key to sign with (default $GAMEDAY_SIGNING_KEY, else the home's own, "
                            "made at first use in <home>/secrets)")
    if allowed:
        p.add_argument("--allowed-signers", metavar="FILE",
                       help="who may sign (ssh-keygen's allowed-signers format; default $GAMEDAY_ALLOWED_SIGNERS, "
                            "else <home>/allowed_signers); keep the auditor's copy apart from the evidence")


def signing_key_of(args: argparse.Namespace) -> Path:
    """The key a command signs with: --signing-key, $GAMEDAY_SIGNING_KEY, else the home's own."""
    given = getattr(args, "signing_key", None) or os.environ.get(SIGNING_KEY_ENV)
    try:
        return signing.given_key(given) if given else signing.home_key(home_of(args))
    except signing.SigningError as e:
        raise UsageError(str(e)) from None


def allowed_signers_of(args: argparse.Namespace) -> signing.AllowedSigners:
    """Who may sign: --allowed-signers, $GAMEDAY_ALLOWED_SIGNERS, else the home's allowed_signers."""
    given = getattr(args, "allowed_signers", None) or os.environ.get(ALLOWED_SIGNERS_ENV)
    path = Path(given) if given else home_of(args) / signing.ALLOWED_SIGNERS_NAME
    if not path.is_file():
        raise UsageError(f"no allowed-signers file at {path}: give --allowed-signers FILE (who may sign the "
                         "evidence, kept apart from it)")
    try:
        return signing.AllowedSigners.read(path)
    except signing.SignatureProblem as e:
        raise UsageError(str(e)) from None
