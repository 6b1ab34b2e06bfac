"""Where everything of one embedded stack lives: ports from a base, folders under a home.

PostgreSQL runs as the `postgres` OS user when we are root, and that user must be able to reach
its folders. A home under a folder it cannot traverse (a 0700 parent such as /root) would break
the server, so its folders then go to a per-home place under /var/tmp instead.
"""
from __future__ import annotations

import hashlib
import json
import os
import pwd
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.pgroles import conninfo_value, server_dsn

DEFAULT_PORT_BASE = 15400
PORT_BASE_ENV = "GAMEDAY_PORT_BASE"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
MAX_PORT = 32767  # 32768+ is the kernel's range for outgoing connections

# Offsets from the port base, one per listener.
PORT_OFFSETS = {
    "api": 0,
    "postgres-primary": 1,
    "postgres-standby": 2,
    "prometheus": 3,
    "alertmanager": 4,
    "alert-receiver": 5,
    # 6 was supervisord's HTTP control; it now listens on a unix socket in the home (see below).
    "rpo-exporter": 6,  # svg_ai_rpo_exposure_seconds for Prometheus (harness/targets/embedded/rpo_exporter.py)
    "postgres-scratch": 7,  # backup verification restores here
}


class LayoutError(ValueError):
    pass


def port_base_from_env(value: str | int | None = None) -> int:
    raw = value if value is not None else os.environ.get(PORT_BASE_ENV, DEFAULT_PORT_BASE)
    try:
        base = int(raw)
    except (TypeError, ValueError):
        raise LayoutError(f"port base must be a whole number, got {raw!r}") from None
    top = base + max(PORT_OFFSETS.values())
    if base < 1024 or top > MAX_PORT:
        raise LayoutError(f"port base {base} puts ports outside 1024..{MAX_PORT} (uses {base}..{top})")
    return base


def server_user() -> str:
    """The OS user the database runs as: postgres when we are root (initdb refuses root)."""
    return "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def user_can_traverse(user: str, folder: Path) -> bool:
    if user == pwd.getpwuid(os.geteuid()).pw_name:
        return True
    r = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(folder)], capture_output=True)
    return r.returncode == 0


# The database tier a home runs: "plain" (two PostgreSQL programs of the stack's own, failed over
# by the BCP's runbook) or "patroni" (an HA cluster of its own: Patroni on an etcd quorum,
# harness/targets/embedded/ha, in <home>/ha, from this offset of the port base).
DB_TIERS = ("plain", "patroni")
# What a new home runs: the system's HA put on trial by a real HA manager. The plain tier stays for
# the runbook's own mechanics (the harness fences and promotes), which the integration tests need.
DEFAULT_DB_TIER = "patroni"
HA_PORT_OFFSET = 8


@dataclass
class Layout:
    """`db`: where the database tier lives when it is not the stack's own (the patroni tier): the
    two servers' ports and data folders, its passfile, WAL archive and socket folder, as the stack
    recorded them in the home's marker at `up`. None: the plain tier, everything from the base."""
    home: Path
    port_base: int
    db: dict | None = None
    srv: Path = field(init=False)  # folders the database user must reach

    def __post_init__(self):
        self.home = Path(self.home).resolve()
        if self.db is None:
            try:
                self.db = json.loads((self.home / ".gameday-home").read_text()).get("db")
            except (OSError, ValueError, AttributeError):
                self.db = None
        user = server_user()
        if user_can_traverse(user, self.home.parent):
            self.srv = self.home / "srv"
        else:
            digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:10]
            self.srv = Path("/var/tmp") / f"gameday-srv-{digest}"

    @property
    def db_tier(self) -> str:
        return "patroni" if self.db else "plain"

    def port(self, name: str) -> int:
        if self.db and name in self.db["ports"]:
            return int(self.db["ports"][name])
        return self.port_base + PORT_OFFSETS[name]

    # Folders and files; names say what they hold.
    @property
    def target_file(self) -> Path: return self.home / "target.json"
    @property
    def marker(self) -> Path: return self.home / ".gameday-home"
    @property
    def logs(self) -> Path: return self.home / "logs"
    @property
    def supervisor_conf(self) -> Path: return self.home / "supervisord.conf"
    @property
    def supervisor_pidfile(self) -> Path: return self.home / "supervisord.pid"
    @property
    def model_dir(self) -> Path: return self.home / "models"
    @property
    def config_path(self) -> Path: return self.home / "config" / "svgai.json"
    @property
    def metrics_dir(self) -> Path: return self.home / "metrics-multiproc"
    @property
    def prometheus_dir(self) -> Path: return self.home / "prometheus"
    @property
    def alertmanager_dir(self) -> Path: return self.home / "alertmanager"
    @property
    def alerts_log(self) -> Path: return self.home / "alerts.jsonl"
    @property
    def heartbeat_dir(self) -> Path: return self.home / "heartbeat"  # the heartbeat ledger
    @property
    def api_pidfile(self) -> Path: return self.home / "api.pid"
    @property
    def primary_dir(self) -> Path: return self.srv / "primary"
    @property
    def standby_dir(self) -> Path: return self.srv / "standby"
    @property
    def archive_dir(self) -> Path: return Path(self.db["archive_dir"]) if self.db else self.srv / "archive"
    @property
    def backup_dir(self) -> Path: return self.srv / "backups"
    @property
    def socket_dir(self) -> Path: return Path(self.db["socket_dir"]) if self.db else self.srv / "run"
    @property
    def holds_dir(self) -> Path: return self.srv / "holds"
    @property
    def bin_dir(self) -> Path: return self.srv / "bin"
    @property
    def artifact_backup_dir(self) -> Path: return self.home / "artifact-backups"
    @property
    def secrets_dir(self) -> Path: return self.home / "secrets"  # 0700: generated at target up
    @property
    def passfile(self) -> Path:  # libpq's format, 0600
        return Path(self.db["passfile"]) if self.db else self.secrets_dir / "pgpass"

    @property
    def supervisor_socket(self) -> Path:
        """supervisord's control socket: in the home (0700, so only its owner can stop a program),
        or under /tmp when the home's path is too long for a unix socket (108 bytes)."""
        inside = self.home / "supervisor.sock"
        if len(str(inside)) <= 100:
            return inside
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"gameday-supervisor-{digest}.sock"

    @property
    def supervisor_url(self) -> str:
        return f"unix://{self.supervisor_socket}"

    def data_dir(self, program: str) -> Path:
        """The data folder a PostgreSQL program runs on (programs keep their folders when roles move)."""
        if self.db:
            return Path(self.db["data_dirs"][program])
        return self.primary_dir if program == "postgres-primary" else self.standby_dir

    def hold_file(self, program: str) -> Path:
        """While this file exists the program's launcher waits instead of starting it."""
        return self.holds_dir / program

    def url(self, name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port(name)}{path}"

    def dsn(self, which: str, user: str = "svgai", dbname: str = "svgai") -> str:
        return server_dsn(self.port(which), dbname, user, passfile=self.passfile)

    def app_dsn(self) -> str:
        # Multi-host: whichever of primary/standby accepts writes, so a promoted standby takes over.
        p, s = self.port("postgres-primary"), self.port("postgres-standby")
        return (f"host=127.0.0.1,127.0.0.1 port={p},{s} dbname=svgai user=svgai "
                f"target_session_attrs=read-write connect_timeout=2 passfile={conninfo_value(self.passfile)}")
