"""Small launch scripts that supervisord runs in front of a server, written into the stack's
server folder (the database user must be able to read them).

Before each (re)start a launcher
- waits while a hold file exists: the "automatic restart disabled" switch that negative controls
  use (a held program looks RUNNING to supervisord but its server is not there);
- clears what a crashed predecessor left behind: PostgreSQL backends still attached to the old
  shared memory (they block every restart), or gunicorn workers of a SIGKILLed arbiter (they hold
  the port, and the new arbiter crash-loops on "address in use").
"""
from __future__ import annotations

from pathlib import Path

from harness.stack.layout import Layout

PG_LAUNCH = r"""#!/bin/bash
# pg-launch DATA_DIR HOLD_FILE POSTGRES_BIN [postgres args...]
set -u
DATA="$1"; HOLD="$2"; POSTGRES="$3"; shift 3
while [ -e "$HOLD" ]; do sleep 0.2; done
leftovers() {
  # `-ef` compares device and inode with bash's own stat: no fork per process, which matters
  # because this runs before every restart and adds to the measured RTO.
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    [ "$p/cwd" -ef "$DATA" ] && echo "${p#/proc/}"
  done
}
# A postmaster and its backends run with the data folder as their working folder.
pids=$(leftovers)
if [ -n "$pids" ]; then
  echo "pg-launch: ending leftover processes of $DATA: $pids" >&2
  kill -9 $pids 2>/dev/null
  for _ in $(seq 100); do [ -z "$(leftovers)" ] && break; sleep 0.05; done
fi
# A postmaster.pid left by a killed server names a pid that may since have been reused by another
# process of this user (another stack's server): PostgreSQL would then refuse to start.
if [ -f "$DATA/postmaster.pid" ]; then
  old=$(head -n 1 "$DATA/postmaster.pid")
  if ! [ "/proc/$old/cwd" -ef "$DATA" ]; then rm -f "$DATA/postmaster.pid"; fi
fi
exec "$POSTGRES" -D "$DATA" "$@"
"""

API_LAUNCH = r"""#!/bin/bash
# api-launch PIDFILE HOLD_FILE METRICS_DIR command...
set -u
PIDFILE="$1"; HOLD="$2"; METRICS="$3"; shift 3
while [ -e "$HOLD" ]; do sleep 0.2; done
if [ -s "$PIDFILE" ]; then
  old=$(cat "$PIDFILE")
  # The old arbiter led its own process group (supervisord makes each program a group leader).
  if kill -0 -- "-$old" 2>/dev/null; then
    echo "api-launch: ending leftover process group $old" >&2
    kill -9 -- "-$old" 2>/dev/null
    for _ in $(seq 60); do kill -0 -- "-$old" 2>/dev/null || break; sleep 0.05; done
  fi
fi
# Metrics of a previous incarnation are gone with it, as a restarted pod's would be.
rm -rf "$METRICS"; mkdir -p "$METRICS"
echo $$ > "$PIDFILE"
exec "$@"
"""


def write_launchers(bin_dir: Path) -> dict[str, Path]:
    bin_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in (("pg-launch", PG_LAUNCH), ("api-launch", API_LAUNCH)):
        path = bin_dir / f"{name}.sh"
        path.write_text(text)
        path.chmod(0o755)
        paths[name] = path
    return paths


def hold(layout: Layout, program: str) -> None:
    """Keep `program` from being (re)started: its launcher waits while the hold file exists."""
    layout.hold_file(program).touch()


def release(layout: Layout, program: str) -> None:
    """Let `program` start again (supervisor.start is still needed if it was stopped)."""
    layout.hold_file(program).unlink(missing_ok=True)
