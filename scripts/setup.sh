#!/usr/bin/env bash
# Idempotent set-up: system parts (PostgreSQL 15, Prometheus, Alertmanager), .venv, the project,
# and for the container target the Docker engine and the project's image.
# Called by every Makefile target that needs it; a second run takes about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=/usr/lib/postgresql/15/bin
missing=()
[ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/pg_basebackup" ] || missing+=(postgresql-15)
[ -f /usr/share/postgresql/15/extension/amcheck.control ] || missing+=(postgresql-15)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
# The HA database tier's consensus store (harness/targets/embedded/ha): three etcd members.
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
# Headless Chromium opens the HTML reports in the tests (rendering and console-error check) and
# prints the evidence to PDF (gameday report pdf); chromedriver lets Selenium drive it for the
# console's browser test (no driver is downloaded); poppler's pdftotext reads the PDFs back in the
# tests; the colour emoji font draws the BCP's notification templates (🚨, ✅) instead of empty boxes.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing system packages; install them with: sudo apt-get install --no-install-recommends $pkgs" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then PY=$c; break; fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python 3.11 is required (chaostoolkit-lib 1.44 and the torch CPU wheel); set PYTHON=/path/to/python3.11" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
  .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
fi
if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  # The CPU wheel first: an unpinned torch would pull a multi-GB CUDA build.
  echo "setup: installing torch 2.13.0 (CPU)"
  .venv/bin/pip install -q torch==2.13.0 > .venv/pip-install.log 2>&1 || { cat .venv/pip-install.log; exit 1; }
fi
if [ ! -f .venv/.setup-stamp ] || [ pyproject.toml -nt .venv/.setup-stamp ]; then
  echo "setup: installing the project and its dependencies"
  # pip's own noise (index locations that do not exist here, setuptools' editable-install banner)
  # is dropped; errors still show and still fail the step below.
  .venv/bin/pip install -q -e . > .venv/pip-install.log 2>&1 || { cat .venv/pip-install.log; exit 1; }
  touch .venv/.setup-stamp
fi

# The container target (`gameday target up --kind containers`): the Docker engine, installed and
# started when root and absent (scripts/docker-engine.sh), and the project's own image, built from
# Debian packages and tagged by its recipe's hash (a second set-up finds it: under a second).
# Without them everything else still works: the container tests then say what is missing.
engine_rc=0
bash scripts/docker-engine.sh || engine_rc=$?
if [ "$engine_rc" = 0 ]; then
  .venv/bin/python -m harness.targets.containers.images build \
    || echo "setup: warning: the container image could not be built; the container target is unavailable" >&2
elif [ "$engine_rc" != 3 ]; then  # 3: not root and no engine, already said
  echo "setup: warning: no Docker engine; the container target is unavailable" >&2
fi
