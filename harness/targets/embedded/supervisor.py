"""supervisord: the restartPolicy analogue of the embedded stack. Renders its configuration and
talks to it over XML-RPC (start/stop programs, read pids and states) on a unix socket that only
the stack's owner can open: on a shared machine no other user may stop a program."""
from __future__ import annotations

import http.client
import socket
import time
import xmlrpc.client
from dataclasses import dataclass, field


@dataclass
class Program:
    name: str
    command: str
    user: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    stopsignal: str = "TERM"
    stopwaitsecs: int = 10
    priority: int = 500


def render_conf(programs: list[Program], *, socket_path: str, pidfile: str, logfile: str, logs_dir: str,
                identifier: str = "supervisor") -> str:
    lines = [
        "[supervisord]",
        # Answered by getIdentification: which stack home this supervisord belongs to, so that a
        # command for one home never stops another home's stack listening on the same port.
        f"identifier={identifier}",
        f"pidfile={pidfile}",
        f"logfile={logfile}",
        "logfile_maxbytes=5MB",
        "logfile_backups=1",
        "loglevel=info",
        "nodaemon=false",
        "",
        # A unix socket, mode 0700: only its owner can talk to supervisord (an inet listener on
        # loopback would let any local user stop the database).
        "[unix_http_server]",
        f"file={socket_path}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{socket_path}",
        "",
    ]
    for p in programs:
        env = ",".join(f'{k}="{v}"' for k, v in p.environment.items())
        lines += [
            f"[program:{p.name}]",
            f"command={p.command}",
            "autostart=false",  # `target up` starts them in dependency order
            "autorestart=true",
            # startsecs=1 was seen to park programs in FATAL; 0 with many retries is reliable.
            "startsecs=0",
            "startretries=100000",
            f"stopsignal={p.stopsignal}",
            f"stopwaitsecs={p.stopwaitsecs}",
            "stopasgroup=true",
            "killasgroup=true",
            f"priority={p.priority}",
            "redirect_stderr=true",
            f"stdout_logfile={logs_dir}/{p.name}.log",
            "stdout_logfile_maxbytes=5MB",
            "stdout_logfile_backups=1",
        ]
        if p.user:
            lines.append(f"user={p.user}")
        if env:
            lines.append(f"environment={env}")
        lines.append("")
    return "\n".join(lines)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class _TimeoutTransport(xmlrpc.client.Transport):
    """HTTP over TCP or over a unix socket (`socket_path`), each call bounded by `timeout`."""

    def __init__(self, timeout: float, socket_path: str | None = None):
        super().__init__()
        self.timeout = timeout
        self.socket_path = socket_path

    def make_connection(self, host):
        if self.socket_path:
            return _UnixConnection(self.socket_path, self.timeout)
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


def rpc(url: str, timeout: float = 5.0):
    """An XML-RPC proxy to supervisord at url (unix:///path/to/socket, or http://HOST:PORT);
    calls time out."""
    if url.startswith("unix://"):
        return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=_TimeoutTransport(timeout, url[len("unix://"):]))
    return xmlrpc.client.ServerProxy(url.rstrip("/") + "/RPC2", transport=_TimeoutTransport(timeout))


def alive(url: str, identifier: str | None = None) -> bool:
    """supervisord answers at `url` (and, with `identifier`, is the one configured with it)."""
    try:
        proxy = rpc(url, timeout=1.0)
        if proxy.supervisor.getState()["statename"] != "RUNNING":
            return False
        return identifier is None or proxy.supervisor.getIdentification() == identifier
    except Exception:
        return False


def process_info(url: str, name: str) -> dict:
    return rpc(url).supervisor.getProcessInfo(name)


def all_process_info(url: str) -> list[dict]:
    return rpc(url).supervisor.getAllProcessInfo()


def start(url: str, name: str) -> None:
    try:
        rpc(url, timeout=30).supervisor.startProcess(name, True)
    except xmlrpc.client.Fault as e:
        if "ALREADY_STARTED" not in e.faultString:
            raise


def stop(url: str, name: str) -> None:
    try:
        rpc(url, timeout=60).supervisor.stopProcess(name, True)
    except xmlrpc.client.Fault as e:
        if "NOT_RUNNING" not in e.faultString:
            raise


def wait_pid_change(url: str, name: str, old_pid: int, timeout_s: float = 30.0) -> int:
    """Wait until supervisord runs `name` under a pid other than old_pid; return it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = process_info(url, name)
        if info["statename"] == "RUNNING" and info["pid"] not in (0, old_pid):
            return info["pid"]
        time.sleep(0.05)
    raise TimeoutError(f"{name} was not restarted within {timeout_s:.0f} s")
