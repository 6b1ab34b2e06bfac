"""supervisord: the restartPolicy analogue of the embedded stack. Renders its configuration and
talks to it over XML-RPC (start/stop programs, read pids and states)."""
from __future__ import annotations

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


def render_conf(programs: list[Program], *, port: int, pidfile: str, logfile: str, logs_dir: str,
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
        "[inet_http_server]",
        f"port=127.0.0.1:{port}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=http://127.0.0.1:{port}",
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


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        conn = super().make_connection(host)
        conn.timeout = self.timeout
        return conn


def rpc(url: str, timeout: float = 5.0):
    """An XML-RPC proxy to supervisord at url (http://127.0.0.1:PORT); calls time out."""
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
