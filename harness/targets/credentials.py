"""The database passwords of a stack (embedded or containers): generated once, at the first
`target up`, and kept in a libpq password file in the home (`secrets/pgpass`, 0600 in a 0700 folder). DSNs name the file,
never a password, so nothing the harness writes or prints carries one."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

ROLES = ("postgres", "svgai")  # the superuser the harness acts as; the application's role


def ensure(secrets_dir: Path, passfile: Path, host: str = "127.0.0.1") -> dict[str, str]:
    """The password of each role, generated if the home has none yet. `host` is the file's host
    field: the embedded stack's servers are on 127.0.0.1; the container target's are reached
    under other names too, from inside its network ("*")."""
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    have = read(passfile)
    if all(role in have for role in ROLES):
        return have
    passwords = {role: have.get(role) or secrets.token_urlsafe(24) for role in ROLES}
    # token_urlsafe never contains ':' or '\\', the two characters a pgpass line would escape.
    text = "".join(f"{host}:*:*:{role}:{pw}\n" for role, pw in passwords.items())
    fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    passfile.chmod(0o600)  # libpq ignores a password file others can read
    return passwords


def read(passfile: Path) -> dict[str, str]:
    """{role: password} from a password file written by ensure(); {} when there is none."""
    try:
        lines = Path(passfile).read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        parts = line.split(":")
        if len(parts) == 5:
            out[parts[3]] = parts[4]
    return out


HA_ROLES = ("replicator", "rest")  # Patroni's replication role; its REST API's user


def ensure_ha(secrets_dir: Path, passfile: Path, host: str = "127.0.0.1") -> dict[str, str]:
    """ensure()'s passwords plus the HA tier's (replication, Patroni's REST API), generated once
    into secrets/ha.json (0600)."""
    passwords = ensure(secrets_dir, passfile, host)
    path = Path(secrets_dir) / "ha.json"
    try:
        extra = json.loads(path.read_text())
    except (OSError, ValueError):
        extra = {}
    if not all(extra.get(k) for k in HA_ROLES):
        extra = {k: extra.get(k) or secrets.token_urlsafe(24) for k in HA_ROLES}
        write_private(path, json.dumps(extra))
    return {**passwords, **extra}


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner reads (0600 from its creation)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
