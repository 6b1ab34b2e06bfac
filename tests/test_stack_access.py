"""The embedded stack lets no one else in. On a shared CI runner any local user can reach
loopback: PostgreSQL must ask every connection for a password (generated at `target up`, kept
0600 in the home) and supervisord must listen only on a unix socket its owner can open. An
unprivileged user (`nobody`) tries the doors and finds each shut; the harness itself, with the
password file, still gets in."""
from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import psycopg
import pytest

from harness.targets.embedded import supervisor
from harness.targets.embedded.layout import PG_BIN

pytestmark = pytest.mark.integration

NOBODY = "nobody"


def _as_nobody(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("runuser") or "runuser", "-u", NOBODY, "--", *cmd], input=stdin,
                          capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PGCONNECT_TIMEOUT": "3"})


@pytest.fixture(scope="module")
def nobody():
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another local user (runuser)")
    try:
        pwd.getpwnam(NOBODY)
    except KeyError:
        pytest.fail(f"no local user {NOBODY!r} to try the doors with")
    return NOBODY


def _psql_as_nobody(host: str, port: int, user: str, password: str | None = None) -> subprocess.CompletedProcess:
    env = f"PGPASSWORD={password} " if password else ""
    return _as_nobody(["sh", "-c", f"{env}exec {PG_BIN / 'psql'} -w -X -h '{host}' -p {port} -U {user} "
                                   f"-d postgres -c 'select 1'"])


def test_nobody_cannot_connect_to_the_database(healthy_stack, nobody):
    for which in ("primary", "standby"):
        port = healthy_stack[which]["port"]
        for user in ("postgres", "svgai"):
            r = _psql_as_nobody("127.0.0.1", port, user)
            assert r.returncode != 0 and "password" in r.stderr, (which, user, r.stdout, r.stderr)
        r = _psql_as_nobody("127.0.0.1", port, "postgres", password="postgres")
        assert r.returncode != 0 and "password authentication failed" in r.stderr, r.stderr
        # The unix socket admits the database's own OS user only (peer), never another local user.
        r = _psql_as_nobody(healthy_stack["socket_dir"], port, "postgres")
        assert r.returncode != 0 and "authentication failed" in r.stderr, r.stderr


def test_nobody_cannot_stop_a_program(healthy_stack, nobody):
    url = healthy_stack["supervisor_url"]
    assert url.startswith("unix://"), f"supervisord must not listen on TCP: {url}"
    sock = url[len("unix://"):]
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o700
    # The same XML-RPC call the harness makes, from the system's Python (no venv needed).
    attempt = textwrap.dedent(f"""
        import http.client, socket, xmlrpc.client
        class C(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX); self.sock.connect({sock!r})
        class T(xmlrpc.client.Transport):
            def make_connection(self, host): return C("localhost")
        xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=T()).supervisor.stopProcess("postgres-primary")
        print("STOPPED")
    """)
    pid_before = supervisor.process_info(url, "postgres-primary")["pid"]
    r = _as_nobody(["python3", "-c", attempt])
    assert r.returncode != 0 and "STOPPED" not in r.stdout and "PermissionError" in r.stderr, (r.stdout, r.stderr)
    info = supervisor.process_info(url, "postgres-primary")
    assert info["statename"] == "RUNNING" and info["pid"] == pid_before


def test_credentials_stay_in_the_home_and_out_of_every_dsn(healthy_stack):
    passfile = Path(healthy_stack["passfile"])
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(passfile.parent.stat().st_mode) == 0o700
    assert passfile.stat().st_uid == os.geteuid()
    text = Path(healthy_stack["home"], "target.json").read_text()
    for line in passfile.read_text().splitlines():
        password = line.rsplit(":", 1)[1]
        assert len(password) >= 24 and password not in text
    assert "password=" not in text
    # The harness gets in with the file, and is refused without it.
    with psycopg.connect(healthy_stack["primary"]["admin_dsn"]) as c:
        assert c.execute("select 1").fetchone() == (1,)
    bare = healthy_stack["primary"]["admin_dsn"].split(" passfile=")[0]
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(bare, connect_timeout=2)


def test_every_listener_is_on_loopback(healthy_stack):
    own = {healthy_stack[w]["port"] for w in ("primary", "standby")}
    own |= {int(healthy_stack[k].rsplit(":", 1)[1]) for k in ("api_url", "prometheus_url", "alertmanager_url",
                                                              "alert_receiver_url")}
    listening = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=True).stdout.splitlines()
    seen = {}
    for line in listening:
        local = line.split()[3]
        host, _, port = local.rpartition(":")
        if port.isdigit() and int(port) in own:
            seen.setdefault(int(port), set()).add(host)
    assert set(seen) == own, f"not listening: {own - set(seen)}"
    for port, hosts in seen.items():
        assert hosts <= {"127.0.0.1"}, f"port {port} listens on {hosts}"
