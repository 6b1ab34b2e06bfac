"""PostgreSQL 15 primary + streaming standby for the embedded stack: initdb, configuration,
base backups, standby cloning, stale lock files. Servers run under supervisord; this module
prepares their folders and checks on them."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from harness.core import procs
from harness.core.pgroles import server_dsn
from harness.targets import credentials
from harness.targets.embedded.layout import PG_BIN, Layout, server_user


class PostgresError(RuntimeError):
    pass


def as_server_user(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a PostgreSQL tool as the database's OS user (they refuse to run as root)."""
    user = server_user()
    if os.geteuid() == 0 and user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        tool = Path(cmd[3] if cmd[0] == "runuser" else cmd[0]).name
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise PostgresError(f"{tool} failed: {msg[-1] if msg else 'exit ' + str(r.returncode)}")
    return r


def chown_to_server_user(*paths: Path) -> None:
    if os.geteuid() != 0:
        return
    pw = pwd.getpwnam(server_user())
    for p in paths:
        os.chown(p, pw.pw_uid, pw.pw_gid)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                for n in dirs + files:
                    os.lchown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)


def prepare_srv(layout: Layout) -> None:
    """Folders the database user owns: data, WAL archive, backups, sockets, holds."""
    for d in (layout.srv, layout.archive_dir, layout.backup_dir, layout.socket_dir, layout.holds_dir, layout.bin_dir):
        d.mkdir(parents=True, exist_ok=True)
    layout.srv.chmod(0o755)
    chown_to_server_user(layout.srv, layout.archive_dir, layout.backup_dir, layout.socket_dir, layout.holds_dir)


# What every server of ours runs with, the embedded stack's and the container image's alike.
COMMON_SETTINGS = """max_connections = 100
shared_buffers = 64MB
wal_level = replica
max_wal_senders = 10
wal_keep_size = 256MB
hot_standby = on
# A standby whose primary died retries its WAL source this often; pg_promote waits for that
# wake-up, so the default 5 s showed up as a 5-10 s promotion in failovers with a dead primary.
wal_retrieve_retry_interval = 500ms
log_line_prefix = '%m [%p] '
"""


def archive_command(archive_dir) -> str:
    """Copy a finished WAL segment into the archive, never over another one, and succeed when
    the archive already holds that very file. A promoted server marks for archiving the old
    segments it got from a base backup or from streaming, which its former primary archived
    already: byte for byte the same file. With a plain `test ! -f && cp` each such segment failed
    forever and the archiver, which goes oldest first, archived nothing newer (the RPO exposure
    stalls found in CI: a timeline-3 segment held back a timeline-8 primary's archive). A file
    that differs still fails, loudly: two histories under one name."""
    a = f"{archive_dir}/%f"
    return f"test ! -f {a} && cp %p {a} || cmp -s %p {a}"


def server_settings(layout: Layout, port: int) -> str:
    return f"""# Written by gameday target up.
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{layout.socket_dir}'
{COMMON_SETTINGS}# WAL archiving: base backups + archive are what point-in-time recovery restores from.
archive_mode = on
archive_command = '{archive_command(layout.archive_dir)}'
# A segment is archived at least this often, which bounds RPO for archive-based restores.
archive_timeout = 5s
logging_collector = off
"""


# Loopback only, and nobody in without proof. Over TCP every role gives its password
# (scram-sha-256; generated at `target up`, see credentials.py). Over the unix socket only the
# database's own OS user gets in, as the superuser (peer, map gameday): that is how the servers
# stream to each other, how pg_basebackup runs and how passwords are set the first time.
HBA = """# Written by gameday target up.
local all postgres peer map=gameday
local replication postgres peer map=gameday
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
"""


def init_primary(layout: Layout) -> None:
    data = layout.primary_dir
    # 1 MB WAL segments keep archive_timeout cheap (16 MB files every 5 s otherwise).
    as_server_user([str(PG_BIN / "initdb"), "-D", str(data), "--auth-local=peer", "--auth-host=scram-sha-256",
                    "-U", "postgres", "--wal-segsize=1", "-E", "UTF8", "--locale=C.UTF-8"])
    configure(layout, data, layout.port("postgres-primary"))


def configure(layout: Layout, data: Path, port: int) -> None:
    conf = data / "gameday.conf"
    conf.write_text(server_settings(layout, port))
    (data / "pg_hba.conf").write_text(HBA)
    (data / "pg_ident.conf").write_text(f"gameday {server_user()} postgres\n")
    main = data / "postgresql.conf"
    text = main.read_text()
    if "include_if_exists = 'gameday.conf'" not in text:
        main.write_text(text + "\ninclude_if_exists = 'gameday.conf'\n")
    chown_to_server_user(conf, data / "pg_hba.conf", data / "pg_ident.conf", main)


def wait_ready(port: int, timeout_s: float = 30.0, what: str = "postgres") -> None:
    """Until the server on `port` accepts connections (pg_isready: no password needed, so this
    works before the roles have theirs)."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        r = subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "1"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return
        last = f"pg_isready exit {r.returncode}"
        time.sleep(0.1)
    raise PostgresError(f"{what} on port {port} did not accept connections within {timeout_s:.0f} s ({last})")


def set_passwords(layout: Layout, ports: list[int]) -> None:
    """Give the superuser and the application's role their generated passwords (creating the
    role if needed), as the database's OS user over the unix socket, on whichever of the running
    servers `ports` accepts writes (a standby refuses; it gets them by replication). The SQL goes
    on stdin, so no password shows in a process list."""
    passwords = credentials.ensure(layout.secrets_dir, layout.passfile)
    sql = ["select pg_is_in_recovery() as standby \\gset",
           "\\if :standby", "\\q", "\\endif",
           f"alter role postgres password '{passwords['postgres']}';",
           "select 'create role svgai login' where not exists (select 1 from pg_roles where rolname = 'svgai') \\gexec",
           f"alter role svgai login password '{passwords['svgai']}';"]
    for port in ports:
        as_server_user([str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(layout.socket_dir),
                        "-p", str(port), "-U", "postgres", "-d", "postgres", "-f", "-"], input="\n".join(sql) + "\n")


def create_app_database(layout: Layout, port: int) -> None:
    with psycopg.connect(server_dsn(port, passfile=layout.passfile), autocommit=True) as c:
        if not c.execute("select 1 from pg_database where datname='svgai'").fetchone():
            c.execute("create database svgai owner svgai")
    with psycopg.connect(server_dsn(port, "svgai", passfile=layout.passfile), autocommit=True) as c:
        c.execute("create extension if not exists amcheck")


def take_base_backup(layout: Layout, label: str | None = None, port: int | None = None) -> Path:
    """A plain-format, self-contained base backup of the primary (on `port`, default the
    postgres-primary program's) into backups/<id>; WAL after it comes from the archive."""
    backup_id = label or time.strftime("base-%Y%m%dT%H%M%SZ", time.gmtime())
    dest = layout.backup_dir / backup_id
    if dest.exists():
        raise PostgresError(f"backup {backup_id} already exists")
    as_server_user([str(PG_BIN / "pg_basebackup"), "-h", str(layout.socket_dir), "-p", str(port or layout.port("postgres-primary")),
                    "-U", "postgres", "-D", str(dest), "-X", "stream", "-c", "fast", "-l", backup_id])
    return dest


def clone_standby(layout: Layout, from_port: int, data: Path, port: int) -> None:
    """(Re)build a streaming standby in `data` from the primary on `from_port`."""
    if data.exists():
        shutil.rmtree(data)
    # Over the unix socket as the servers' own OS user (peer): the primary_conninfo that -R
    # writes then needs no password, and the standby streams after every rebuild.
    as_server_user([str(PG_BIN / "pg_basebackup"), "-h", str(layout.socket_dir), "-p", str(from_port),
                    "-U", "postgres", "-D", str(data), "-R", "-X", "stream", "-c", "fast"])
    configure(layout, data, port)


def wal_receiver_streaming(port: int, passfile: Path | None = None) -> bool:
    with psycopg.connect(server_dsn(port, passfile=passfile)) as c:
        row = c.execute("select status from pg_stat_wal_receiver").fetchone()
        return bool(row and row[0] == "streaming")


def replication_state(primary_port: int, passfile: Path | None = None) -> list[dict]:
    with psycopg.connect(server_dsn(primary_port, passfile=passfile)) as c:
        cur = c.execute("select application_name, state, client_port from pg_stat_replication")
        return [dict(zip(("application_name", "state", "client_port"), row)) for row in cur.fetchall()]


def in_recovery(port: int, passfile: Path | None = None) -> bool:
    """True for a standby. Unlike pgroles.server_role, a server that does not answer raises (the
    health check reports why; a role decision must not treat "down" as a role)."""
    with psycopg.connect(server_dsn(port, passfile=passfile)) as c:
        return bool(c.execute("select pg_is_in_recovery()").fetchone()[0])


def remove_stale_locks(layout: Layout) -> list[str]:
    """Remove postmaster.pid files whose pid is not a process running in that data folder. A stack
    killed at once leaves them; PostgreSQL refuses to start when the pid was since reused by a live
    process (the launchers check the same before each start). Returns what was removed."""
    removed = []
    for data_dir in (layout.primary_dir, layout.standby_dir):
        lock = data_dir / "postmaster.pid"
        pid = procs.read_pid(lock)
        if pid is None:
            continue
        if procs.cwd(pid) != os.path.realpath(data_dir):
            lock.unlink(missing_ok=True)
            removed.append(f"{lock} (pid {pid} not running there)")
    return removed
