#!/usr/bin/env bash
# The Docker engine for the container target: installed (Debian's docker.io) and started when
# root and absent; idempotent (an engine that answers is left alone). Not root: says what is
# missing and exits 3, so that set-up carries on with the non-container parts.
# Its folders are the engine's own, not the project's: one engine serves every checkout.
set -euo pipefail

SOCK=/var/run/docker.sock
LOG=/var/log/gameday-dockerd.log

engine_answers() {
  [ -S "$SOCK" ] && curl -fsS --max-time 2 --unix-socket "$SOCK" http://localhost/_ping >/dev/null 2>&1
}

engine_answers && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "setup: no Docker engine answers on $SOCK and this is not root: the container target is unavailable" \
       "(as root, set-up installs docker.io and starts dockerd)" >&2
  exit 3
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  echo "setup: installing Debian packages: docker.io debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null; }
fi
echo "setup: starting dockerd (log $LOG)"
# Its own session: the engine outlives set-up and the shell that ran it.
setsid nohup /usr/sbin/dockerd --data-root /var/lib/docker --exec-root /var/run/docker -H "unix://$SOCK" \
  >>"$LOG" 2>&1 < /dev/null &
for _ in $(seq 1 300); do
  engine_answers && exit 0
  sleep 0.1
done
echo "setup: dockerd did not answer on $SOCK within 30 s; see $LOG" >&2
exit 1
