"""The project's own container image, built from Debian packages: no registry is reachable and no
image is pulled. A `debootstrap --variant=minbase` root file system with PostgreSQL 15, etcd,
Prometheus, Alertmanager, Python 3.11 (the shared libraries the project's .venv interpreter needs;
the .venv itself is mounted read-only at run time) and iproute2 (tc netem), imported with
`docker import`. One image for every component: one build, one cache.

Patroni is the .venv's, the one the embedded stack and bench/failover.py run: its packages are
mounted read-only at /opt/gameday-site and run by the image's own python3.11 as the database's
OS user (a .venv mounted at its host path may lie under a folder that user cannot traverse, such
as /root; the mount point cannot).

The tag is a content hash of the recipe (suite, packages, the files added, the import changes),
so a second set-up finds the image and returns at once; any change to the recipe builds anew.

    python -m harness.targets.containers.images build     # build if absent; prints the tag and seconds
    python -m harness.targets.containers.images tag       # the tag the recipe names
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


__all__ = ["IMAGE_REPO", "image_tag", "image_exists", "build", "remove_stale", "mirror", "ImageError"]

IMAGE_REPO = "gameday/svgai"
SUITE = "bookworm"
PACKAGES = (
    "postgresql-15",            # the two Patroni members' servers
    "etcd-server",              # Patroni's consensus store: three containers, one Raft quorum
    "prometheus",               # Debian 2.42
    "prometheus-alertmanager",
    "python3.11",               # brings the shared libraries a CPython 3.11 needs (ssl, ffi, sqlite, …)
    "libstdc++6", "libgomp1",   # torch and scikit-learn's native code
    "iproute2",                 # tc netem for the latency fault (also usable with docker exec)
    "procps",                   # ps/kill for people debugging inside a container
)
# Left out of the image: documentation and caches (a smaller tar imports faster).
PRUNE = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt/archives",
         "var/lib/apt/lists", "var/lib/postgresql/15/main", "etc/postgresql/15/main")
DEBOOTSTRAP_CACHE = Path("/var/cache/gameday-debootstrap")  # downloaded .debs kept for the next cold build

# A Patroni node's entrypoint: its configuration (it holds passwords) copied from the home's
# secrets, mounted read-only, into a file only the database's OS user reads; the shared WAL
# archive (a volume) made that user's; then Patroni as PID 1, which makes it reap its children
# and pass signals on (Patroni's own init mode). Patroni runs and restarts PostgreSQL. -S: only
# the mounted packages, none of the image's own (as the embedded stack runs it with a system Python).
PATRONI_ENTRYPOINT = r"""#!/bin/bash
# gameday-patroni MEMBER
set -eu
M="$1"
install -d -o postgres -g postgres -m 700 /var/lib/gameday /var/lib/gameday/pg /var/lib/gameday/archive
install -d -o postgres -g postgres -m 755 /var/run/postgresql
install -o postgres -g postgres -m 600 "/run/gameday-ha/$M.yml" /var/lib/gameday/patroni.yml
export PYTHONPATH=/opt/gameday-site PYTHONDONTWRITEBYTECODE=1
exec setpriv --reuid=postgres --regid=postgres --init-groups python3.11 -S -m patroni /var/lib/gameday/patroni.yml
"""

FILES = {"usr/local/bin/gameday-patroni": (PATRONI_ENTRYPOINT, 0o755)}
CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8",
           "LABEL org.gameday.image=svgai")


class ImageError(RuntimeError):
    """The image cannot be built: one sentence naming what failed."""


def image_tag() -> str:
    """`gameday/svgai:<hash of the recipe>`."""
    recipe = {"suite": SUITE, "packages": PACKAGES, "prune": PRUNE, "changes": CHANGES,
              "files": {path: [text, mode] for path, (text, mode) in FILES.items()}}
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    return f"{IMAGE_REPO}:{digest}"


def image_exists(tag: str | None = None) -> bool:
    r = subprocess.run(["docker", "image", "inspect", tag or image_tag()], capture_output=True)
    return r.returncode == 0


def mirror() -> str:
    """The Debian mirror apt uses here (deb822 sources first, then sources.list)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        text = path.read_text()
        for block in text.split("\n\n"):
            suites = re.search(r"^Suites:\s*(.+)$", block, re.M)
            uris = re.search(r"^URIs:\s*(\S+)", block, re.M)
            if uris and suites and SUITE in suites.group(1).split() and "security" not in uris.group(1):
                return uris.group(1)
    lists = Path("/etc/apt/sources.list")
    if lists.exists():
        for line in lists.read_text().splitlines():
            m = re.match(rf"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", line)
            if m and "security" not in m.group(1):
                return m.group(1)
    return "http://deb.debian.org/debian"


def build(log=print) -> tuple[str, float, bool]:
    """Build the image unless it exists. Returns (tag, seconds taken, built?)."""
    tag = image_tag()
    start = time.monotonic()
    if image_exists(tag):
        return tag, time.monotonic() - start, False
    if os.geteuid() != 0:
        raise ImageError(f"image {tag} is absent and building it needs root (debootstrap)")
    for tool in ("debootstrap", "docker"):
        if not shutil.which(tool):
            raise ImageError(f"{tool} not found; run scripts/setup.sh as root (it installs docker.io and debootstrap)")
    DEBOOTSTRAP_CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gameday-image-", dir="/var/tmp"))
    rootfs = work / "rootfs"
    try:
        log(f"images: debootstrap {SUITE} (minbase + {len(PACKAGES)} packages) from {mirror()}")
        r = subprocess.run(["debootstrap", "--variant=minbase", f"--cache-dir={DEBOOTSTRAP_CACHE}",
                            f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), mirror()],
                           capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise ImageError(f"debootstrap failed (exit {r.returncode}): {' | '.join(tail)}; "
                             f"see {rootfs}/debootstrap/debootstrap.log")
        for rel in PRUNE:
            shutil.rmtree(rootfs / rel, ignore_errors=True)
        for rel, (text, mode) in FILES.items():
            path = rootfs / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(mode)
        log(f"images: docker import as {tag}")
        cmd = ["docker", "import"] + [a for change in CHANGES for a in ("--change", change)] + ["-", tag]
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(cmd, stdin=tar.stdout, capture_output=True, text=True)
        tar.stdout.close()
        if tar.wait() != 0 or imp.returncode != 0:
            raise ImageError(f"docker import of {tag} failed: {(imp.stderr or imp.stdout).strip()[-300:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for stale in remove_stale(tag):
        log(f"images: removed {stale}, built from an earlier recipe")
    return tag, time.monotonic() - start, True


def remove_stale(current: str) -> list[str]:
    """Remove the project's images of earlier recipes (about 0.8 GB each); one a container still
    uses stays. Returns the tags removed."""
    r = subprocess.run(["docker", "images", IMAGE_REPO, "--format", "{{.Repository}}:{{.Tag}}"],
                       capture_output=True, text=True)
    removed = []
    for tag in r.stdout.split() if r.returncode == 0 else []:
        if tag != current and subprocess.run(["docker", "rmi", tag], capture_output=True).returncode == 0:
            removed.append(tag)
    return removed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.targets.containers.images", description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("build", "tag"))
    args = ap.parse_args(argv)
    if args.action == "tag":
        print(image_tag())
        return 0
    try:
        tag, seconds, built = build()
    except ImageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"images: {tag} {'built' if built else 'present'} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
