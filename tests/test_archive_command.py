"""The WAL archive's command, run as PostgreSQL runs it (sh -c, %p and %f filled in), against
known files: a new segment is copied; the same segment archived again (what a promoted server
does with segments its former primary archived) succeeds and changes nothing; a different file
under the same name fails and is left alone; a missing archive (the archive-stopped fault)
fails. Both tiers and the Kubernetes manifest use it."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.targets.embedded import postgres
from harness.targets.embedded.ha import config

ROOT = Path(__file__).resolve().parent.parent
SEGMENT = "000000030000000000000032"


def archive(tmp_path: Path, content: bytes, archive_dir: Path) -> int:
    wal = tmp_path / "pg_wal"
    wal.mkdir(exist_ok=True)
    (wal / SEGMENT).write_bytes(content)
    command = postgres.archive_command(archive_dir).replace("%p", f"pg_wal/{SEGMENT}").replace("%f", SEGMENT)
    return subprocess.run(["sh", "-c", command], cwd=tmp_path).returncode


@pytest.fixture
def archive_dir(tmp_path) -> Path:
    (tmp_path / "archive").mkdir()
    return tmp_path / "archive"


def test_a_new_segment_is_archived(tmp_path, archive_dir):
    assert archive(tmp_path, b"wal", archive_dir) == 0
    assert (archive_dir / SEGMENT).read_bytes() == b"wal"


def test_the_same_segment_archived_again_succeeds_and_changes_nothing(tmp_path, archive_dir):
    assert archive(tmp_path, b"wal", archive_dir) == 0
    before = (archive_dir / SEGMENT).stat().st_mtime_ns
    assert archive(tmp_path, b"wal", archive_dir) == 0  # was exit 1 for ever: the archiver stalled
    assert (archive_dir / SEGMENT).stat().st_mtime_ns == before


def test_another_history_under_the_same_name_fails_and_is_left_alone(tmp_path, archive_dir):
    assert archive(tmp_path, b"wal of one history", archive_dir) == 0
    assert archive(tmp_path, b"wal of another one", archive_dir) != 0
    assert (archive_dir / SEGMENT).read_bytes() == b"wal of one history"


def test_a_missing_archive_fails(tmp_path):
    assert archive(tmp_path, b"wal", tmp_path / "moved-aside") != 0


def test_every_tier_archives_with_it():
    layout = config.HaLayout(Path("/var/tmp/h"), 16440, Path("/var/tmp/h/srv"))
    dcs = config.patroni_config(layout, "pg0", {"postgres": "p", "replicator": "r", "rest": "x"})["bootstrap"]["dcs"]
    assert dcs["postgresql"]["parameters"]["archive_command"] == postgres.archive_command(layout.archive_dir)
    manifest = (ROOT / "deploy" / "kubernetes" / "postgres.yaml").read_text()
    assert "cp %p /var/lib/svgai/backups/wal/%f || cmp -s %p /var/lib/svgai/backups/wal/%f" in manifest
