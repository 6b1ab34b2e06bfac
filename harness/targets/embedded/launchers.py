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

import time
from pathlib import Path

from harness.targets.embedded.layout import Layout

PG_LAUNCH = r"""#!/bin/bash
# pg-launch DATA_DIR HOLD_FILE POSTGRES_BIN [postgres args...]
set -u
DATA="$1"; HOLD="$2"; POSTGRES="$3"; shift 3
HELD
while held; do sleep 0.2 & wait $!; done
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
STALE_PIDFILE
exec "$POSTGRES" -D "$DATA" "$@"
"""

API_LAUNCH = r"""#!/bin/bash
# api-launch PIDFILE HOLD_FILE METRICS_DIR command...
set -u
PIDFILE="$1"; HOLD="$2"; METRICS="$3"; shift 3
HELD
while held; do sleep 0.2 & wait $!; done
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


# A hold file holds the program while it exists and its deadline (epoch seconds, its content) has
# not passed. An expired hold is removed and ignored: whoever set it (a harness since SIGKILLed)
# can no longer release it. An empty hold (no deadline) holds until removed.
HELD = r"""# Stopped while held (supervisord's INT/TERM): leave at once. The loop waits with `wait`, which a
# trapped signal interrupts; a foreground `sleep` would defer the trap, and supervisord, seeing no
# exit, would wait its 10 s and kill (a fenced primary took 10 s to stop in failovers).
trap 'exit 0' INT TERM
held() {
  [ -e "$HOLD" ] || return 1
  local d; d=$(head -c 32 "$HOLD" 2>/dev/null); d=${d%%[!0-9]*}
  [ -z "$d" ] && return 0
  [ "$(date +%s)" -lt "$d" ] && return 0
  echo "launch: hold $HOLD expired at $d, ignored" >&2
  rm -f "$HOLD"
  return 1
}"""
# (exec replaces the shell once the hold is gone: the trap does not outlive it.)

# A postmaster.pid left by a killed server names a pid that may since have been reused by another
# process of this user (another stack's server): PostgreSQL would then refuse to start.
STALE_PIDFILE = r"""if [ -f "$DATA/postmaster.pid" ]; then
  old=$(head -n 1 "$DATA/postmaster.pid")
  if ! [ "/proc/$old/cwd" -ef "$DATA" ]; then rm -f "$DATA/postmaster.pid"; fi
fi"""


def render(template: str) -> str:
    """A launch script: its `HELD` and `STALE_PIDFILE` lines replaced by the shared snippets."""
    return template.replace("\nHELD\n", f"\n{HELD}\n", 1).replace("\nSTALE_PIDFILE\n", f"\n{STALE_PIDFILE}\n", 1)


def write_launchers(bin_dir: Path) -> dict[str, Path]:
    bin_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in (("pg-launch", render(PG_LAUNCH)), ("api-launch", render(API_LAUNCH))):
        path = bin_dir / f"{name}.sh"
        path.write_text(text)
        path.chmod(0o755)
        paths[name] = path
    return paths


def hold(layout: Layout, program: str, lease_s: float = 900.0) -> None:
    """Keep `program` from being (re)started for at most `lease_s` seconds: its launcher waits
    while the hold file exists and its deadline has not passed (a runbook that dies mid-way
    cannot keep a server down for good)."""
    layout.hold_file(program).write_text(f"{time.time() + lease_s:.0f}\n")


def release(layout: Layout, program: str) -> None:
    """Let `program` start again (supervisor.start is still needed if it was stopped)."""
    layout.hold_file(program).unlink(missing_ok=True)
