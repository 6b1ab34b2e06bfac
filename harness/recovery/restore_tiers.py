"""How a restore takes the database servers down and brings them up again, on each tier.

harness.recovery.database restores a base backup and the WAL archive into the primary's data
folder; what it must not do is fight whatever supervises the servers:

  Supervised   the plain tier: the stack's supervisord runs both servers. Fence = hold + stop
               both programs; recovery settings go into gameday.conf; the standby is cloned anew.
  Patroni      the patroni tier, the way a Patroni shop restores: maintenance mode first (`pause`:
               Patroni neither promotes the replica while the leader is down nor starts the
               stopped leader), the leader's PostgreSQL stopped and restarted by hand with Patroni's
               own command line (its postmaster.opts) plus the recovery settings, promoted; then
               the replica rebuilt by Patroni (`reinitialize`) and the automation back on (`resume`).

Each class has the same steps; a step that fails raises and the restore puts things back.
"""
from __future__ import annotations

import shlex
import shutil
import time
from datetime import datetime
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness.core import procs
from harness.core.errors import first_line
from harness.core.pgroles import passfile_of
from harness.recovery.runbook import wait_streaming
from harness.targets.embedded import postgres, supervisor
from harness.targets.embedded.ha import nodes as ha_nodes
from harness.targets.embedded.ha.config import HAError
from harness.targets.embedded.launchers import hold, release
from harness.targets.embedded.layout import PG_BIN, Layout

__all__ = ["for_target", "recovery_settings", "server_options", "without_replica_settings"]

# Files Patroni writes for its member (its port, its pg_hba): a backup taken on the other member
# carries that member's, so the restored folder keeps its own.
PATRONI_OWN_FILES = ("postgresql.conf", "postgresql.base.conf", "pg_hba.conf", "pg_ident.conf", "patroni.dynamic.json")
# What Patroni writes into a replica's postgresql.conf and leaves there when that member is
# promoted: a restore's own recovery settings must be the only ones (an empty recovery_target
# beside the restore's recovery_target_time is "multiple recovery targets specified").
REPLICA_SETTINGS = ("restore_command", "recovery_target", "recovery_target_lsn", "recovery_target_name",
                    "recovery_target_time", "recovery_target_xid", "recovery_target_inclusive",
                    "recovery_target_timeline", "recovery_target_action", "primary_conninfo", "primary_slot_name")


def recovery_settings(archive: Path, when: datetime | None) -> dict[str, str]:
    """The recovery a restore asks of PostgreSQL: every archived segment, the newest timeline,
    and with `when` a stop just before that moment, then promotion."""
    settings = {"restore_command": f"cp {archive}/%f %p", "recovery_target_timeline": "latest"}
    if when is not None:
        settings.update(recovery_target_time=when.isoformat(), recovery_target_inclusive="off",
                        recovery_target_action="promote")
    return settings


def server_options(postmaster_opts: str) -> list[str]:
    """Patroni's options for a server, from its postmaster.opts: the program and its data folder
    left out (pg_ctl names the folder), and every `-c name=value` too. Patroni passes its settings
    as `--name=value`; `-c` pairs are an earlier restore's recovery settings (Patroni adopts the
    restored server as it runs, so its postmaster.opts still holds them)."""
    args = shlex.split(postmaster_opts)[1:]
    dropped = {i for i, a in enumerate(args) if a in ("-D", "-c")}
    return [a for i, a in enumerate(args) if i not in dropped and i - 1 not in dropped]


def without_replica_settings(conf: str) -> str:
    """A postgresql.conf without the recovery and streaming settings Patroni writes for a replica."""
    keep = [line for line in conf.splitlines(keepends=True)
            if line.split("=", 1)[0].strip() not in REPLICA_SETTINGS]
    return "".join(keep)


def for_target(t: dict, layout: Layout, primary: str, standby: str):
    """The servers of this target, as the restore drives them."""
    cls = Patroni if t.get("db_tier") == "patroni" else Supervised
    return cls(t, layout, primary, standby)


class Supervised:
    """The plain tier: both servers are programs of the stack's supervisord."""

    def __init__(self, t: dict, layout: Layout, primary: str, standby: str):
        self.t, self.layout, self.primary, self.standby = t, layout, primary, standby
        self.sup = t["supervisor_url"]
        self.log_path = Path(t["logs_dir"]) / f"{primary}.log"

    def fence(self) -> None:
        # Both: the standby would follow a timeline that is being discarded.
        for name in (self.primary, self.standby):
            hold(self.layout, name)
        for name in (self.primary, self.standby):
            supervisor.stop(self.sup, name)

    def configure(self, data: Path, aside: Path | None, settings: dict[str, str]) -> None:
        postgres.configure(self.layout, data, self.layout.port(self.primary))
        lines = ["", "# Point-in-time recovery (written by harness.recovery; removed after promotion)."]
        lines += [f"{k} = '{v}'" for k, v in settings.items()]
        with open(data / "gameday.conf", "a") as f:
            f.write("\n".join(lines) + "\n")
        (data / "recovery.signal").touch()
        postgres.chown_to_server_user(data)
        data.chmod(0o700)

    def start(self) -> None:
        release(self.layout, self.primary)
        supervisor.start(self.sup, self.primary)

    def exited(self) -> bool:
        return False  # supervisord starts it again; a failed startup shows in its log

    def stop(self) -> None:
        hold(self.layout, self.primary)
        supervisor.stop(self.sup, self.primary)

    def own_settings(self, data: Path) -> None:
        # After promotion the recovery settings stay in the running server's memory; the files must
        # not carry them on (a standby cloned from here would otherwise stop at the target time and
        # promote itself). After a put-back the old folder gets this server's settings again.
        postgres.configure(self.layout, data, self.layout.port(self.primary))

    def rebuild_standby(self) -> str:
        port, other_port = self.layout.port(self.primary), self.layout.port(self.standby)
        postgres.clone_standby(self.layout, port, self.layout.data_dir(self.standby), other_port)
        release(self.layout, self.standby)
        supervisor.start(self.sup, self.standby)
        wait_streaming(other_port, 60, passfile_of(self.t))
        return "cloned from the restored primary"

    def put_back(self) -> None:
        for name in (self.primary, self.standby):
            release(self.layout, name)
            try:
                supervisor.start(self.sup, name)
            except Exception:
                pass


class Patroni:
    """The patroni tier: Patroni's maintenance mode around a restore of its leader's folder."""

    def __init__(self, t: dict, layout: Layout, primary: str, standby: str):
        self.cluster = t["ha"]
        self.member = layout.db["members"][primary]
        self.replica = layout.db["members"][standby]
        self.data = Path(self.cluster["members"][self.member]["data_dir"])
        self.log_path = self.data.parent / "restore.log"  # the server user's folder: pg_ctl writes it
        self.command_line: list[str] = []
        self.settings: dict[str, str] = {}
        self.started_at = 0.0

    def fence(self) -> None:
        # Patroni's own command line for this member, as PostgreSQL recorded it: the port, the
        # config file and the settings Patroni passes only on the command line.
        opts = self.data / "postmaster.opts"
        try:
            self.command_line = server_options(opts.read_text())
        except OSError as e:
            raise ActivityFailed(f"cannot read {opts} (Patroni's command line for {self.member}): {e}") from None
        try:
            ha_nodes.set_pause(self.cluster, True)
        except HAError as e:
            raise ActivityFailed(f"Patroni's maintenance mode could not be turned on: {first_line(e)}") from None
        self._pg_ctl_stop()

    def configure(self, data: Path, aside: Path | None, settings: dict[str, str]) -> None:
        if aside is not None:
            for name in PATRONI_OWN_FILES:
                if (aside / name).exists():
                    shutil.copy2(aside / name, data / name)
        conf = data / "postgresql.conf"
        if conf.exists():
            conf.write_text(without_replica_settings(conf.read_text()))
        self.settings = dict(settings)
        (data / "recovery.signal").touch()
        postgres.chown_to_server_user(data)
        data.chmod(0o700)

    def start(self) -> None:
        options = self.command_line + [x for k, v in self.settings.items() for x in ("-c", f"{k}={v}")]
        self.started_at = time.monotonic()
        postgres.as_server_user([str(PG_BIN / "pg_ctl"), "start", "-W", "-D", str(self.data), "-l", str(self.log_path),
                                 "-o", " ".join(shlex.quote(o) for o in options)])

    def stop(self) -> None:
        self._pg_ctl_stop()

    def exited(self) -> bool:
        """The server started by hand is gone (a bad setting, a failed recovery): nobody restarts it."""
        pid = procs.read_pid(self.data / "postmaster.pid")
        if pid is None:  # not yet written, or removed by a postmaster that exited
            return time.monotonic() - self.started_at > 3.0
        return not procs.running(pid)

    def own_settings(self, data: Path) -> None:
        pass  # the recovery settings were only on this server's command line; the files are Patroni's

    def rebuild_standby(self) -> str:
        # Paused, Patroni dropped the leader lock when the leader stopped; the restored primary
        # takes it within a loop. Then Patroni rebuilds the replica from it (a new base backup)
        # and takes the automation back.
        try:
            ha_nodes.wait_leader(self.cluster, self.member, 30)
            ha_nodes.reinitialize(self.cluster, self.replica)
        finally:
            ha_nodes.set_pause(self.cluster, False)
        ha_nodes.wait_streaming(self.cluster, self.replica, 120)
        return "Patroni reinitialize"

    def put_back(self) -> None:
        # The previous folder is back: it starts as the leader it was, with Patroni's own options,
        # before maintenance mode ends. Left to Patroni, the member with the lower position (the
        # running replica) could win the leader race, and the old leader's newer WAL be rewound away.
        self.settings = {}
        (self.data / "recovery.signal").unlink(missing_ok=True)
        try:
            if self.command_line and (self.data / "PG_VERSION").exists():
                self.start()
                ha_nodes.wait_leader(self.cluster, self.member, 30)
        finally:
            ha_nodes.set_pause(self.cluster, False)

    def _pg_ctl_stop(self) -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        try:
            postgres.as_server_user([str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60"])
        except postgres.PostgresError:
            if (self.data / "postmaster.pid").exists():
                time.sleep(0.5)
                if (self.data / "postmaster.pid").exists():
                    raise
